"""``python -m dashboard``: serve the dashboard with settings from PA_DASHBOARD_* variables.

``python -m dashboard hash-password`` prints a password hash line for the users file
(``PA_DASHBOARD_USERS_FILE``). The password is read from a prompt (asked twice) or, when
stdin is not a terminal, from its first line; never from the command line, where other
users of the machine could read it in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from dashboard.app import serve
from dashboard.passwords import DEFAULT_ITERATIONS, hash_password
from dashboard.settings import DashboardSettings
from privacy.errors import PipelineError

log = logging.getLogger("dashboard")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard",
        description="Serve the dashboard (settings from PA_DASHBOARD_* variables).",
    )
    sub = parser.add_subparsers(dest="command")
    hp = sub.add_parser(
        "hash-password",
        help="print a password hash line for the users file",
        description="Read a password (prompt, or the first line of stdin) and print its "
        "pbkdf2_sha256$<iterations>$<salt>$<hash> line for the users file's password_hash.",
    )
    hp.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                    help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS:,})")
    return parser


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise PipelineError("the two passwords differ; nothing was printed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def hash_password_command(iterations: int) -> int:
    password = _read_password()
    if not password:
        raise PipelineError("no password given (an empty line); nothing was printed")
    sys.stdout.write(hash_password(password, iterations) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "hash-password":
            return hash_password_command(args.iterations)
        serve(DashboardSettings())
    except PipelineError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
