"""The `privacy-analytics` command line.

Each group of commands lives in its own module with a ``register(subparsers)`` function;
this module only assembles them and translates errors into exit codes in one place:
0 success, 2 input rejected or an operator's change refused (reason on stderr, one line),
1 any other error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from privacy.errors import InputRejected, PipelineError, TermsChangeRefused

EXIT_OK, EXIT_ERROR, EXIT_REJECTED = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from flows import cli_contract, cli_pipeline, cli_plan, cli_store

    parser = argparse.ArgumentParser(
        prog="privacy-analytics",
        description="Privacy-first analytics: files dropped in a bucket become differentially "
        "private aggregates. Settings come from PA_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cli_pipeline.register(sub)
    cli_contract.register(sub)
    cli_store.register(sub)
    cli_plan.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except InputRejected as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    except TermsChangeRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
