"""Pipeline commands: up, drop, process, demo."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.keys import landing_key
from flows.settings import Settings
from privacy.errors import InputRejected, PipelineError

if TYPE_CHECKING:
    from flows.objectstore import ObjectInfo
    from flows.outcome import Outcome


def _out(line: str) -> None:
    print(line, flush=True)


def _prefect_defaults(settings: Settings) -> None:
    """Before Prefect is imported: keep its home in the state dir and its analytics off."""
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")


def _quiet_prefect_console() -> None:
    """Keep stderr for the one-line outcome: silence Prefect's console handlers (its logs
    still reach the Prefect server and show in the UI)."""
    import logging

    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    loggers = [logging.getLogger()] + [
        logging.getLogger(n)
        for n in list(logging.root.manager.loggerDict)
        if n.startswith("prefect")
    ]
    for logger in loggers:
        for h in logger.handlers:
            if isinstance(h, PrefectConsoleHandler):
                h.setLevel(logging.CRITICAL + 10)


def cmd_up(args: argparse.Namespace) -> int:
    from flows.up import run_up

    return run_up(Settings(), out=_out)


def _drop(settings: Settings, path: Path, dataset: str) -> ObjectInfo:
    from flows.objectstore import open_store

    if not path.is_file():
        raise PipelineError(f"{path}: no such file")
    return open_store(settings).put_file(landing_key(dataset, path.name).key, path)


def cmd_drop(args: argparse.Namespace) -> int:
    settings = Settings()
    info = _drop(settings, Path(args.file), args.dataset)
    _out(f"dropped {info.key} ({info.size} bytes, etag {info.etag}) into {_where(settings)}")
    return 0


def _where(settings: Settings) -> str:
    if settings.uses_s3:
        return f"s3 bucket {settings.s3_bucket} at {settings.s3_endpoint}"
    return str(settings.objects_dir)


def _run_here(args: argparse.Namespace) -> tuple[Settings, str | None]:
    """Before a flow runs in this process: Prefect's defaults, the state folder, a quiet
    console unless ``--verbose``; returns the settings and the ``--contract`` path."""
    settings = Settings()
    _prefect_defaults(settings)
    settings.state.mkdir(parents=True, exist_ok=True)
    if not args.verbose:
        _quiet_prefect_console()
    return settings, str(Path(args.contract).resolve()) if args.contract else None


def cmd_process(args: argparse.Namespace) -> int:
    settings, contract = _run_here(args)
    from flows.outcome import Outcome
    from flows.process_object import process_object

    settings.pseudonym_key_bytes()  # refuse a missing or short key before anything runs
    info = _drop(settings, Path(args.file), args.dataset)
    state = process_object(
        bucket=info.bucket,
        key=info.key,
        etag=info.etag,
        size=info.size,
        contract_path=contract,
        return_state=True,
    )
    outcome = state.result(raise_on_failure=False)
    if not isinstance(outcome, Outcome):  # the flow raised, or crashed, before an outcome
        message = _one_line(state.message)
        raise PipelineError(message or f"the run ended {state.name}")
    return _report(outcome)


def cmd_release_dataset(args: argparse.Namespace) -> int:
    _, contract = _run_here(args)
    from flows.release_dataset import DatasetOutcome, release_dataset

    state = release_dataset(dataset=args.dataset, contract_path=contract, return_state=True)
    out = state.result(raise_on_failure=False)
    if not isinstance(out, DatasetOutcome):
        raise PipelineError(_one_line(state.message) or f"the run ended {state.name}")
    message = _one_line(out.message)
    if out.status in ("completed", "skipped", "duplicate"):
        _out(f"{'completed' if out.status == 'completed' else 'skipped'}: {message}")
        return 0
    if out.status == "failed":
        raise PipelineError(message or "the dataset release failed")
    print(f"{out.status.replace('_', ' ')}: {message}", file=sys.stderr)
    return 2 if out.status == "refused" else 1


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _report(outcome: Outcome) -> int:
    """Say how the run ended; its exit code: 0 published or skipped, 2 rejected or refused
    (``flows.cli`` says why for a rejection), 1 otherwise."""
    message = _one_line(outcome.message)
    if outcome.status == "rejected":
        raise InputRejected(message)
    if outcome.status == "terms_changed":
        print(f"refused: {message}", file=sys.stderr)
        return 2
    if outcome.status == "failed":
        raise PipelineError(message or "the run ended Failed")  # as its final state says
    if outcome.status == "budget_exhausted":
        print(f"budget exhausted: {message}", file=sys.stderr)
        return 1
    word = outcome.status if outcome.status in ("completed", "masked") else "skipped"
    _out(f"{word}: {message}" if message else word)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import write_employee_csv

    settings = Settings()
    contract = settings.contracts_dir / "employees.yaml"
    if not contract.is_file():
        raise PipelineError(
            f"{contract} is missing: the demo needs the example contract; run from the project "
            "folder or set PA_CONTRACTS_DIR to a folder holding employees.yaml"
        )
    with tempfile.TemporaryDirectory(prefix="pa-demo-") as tmp:
        name = f"projects-{os.getpid()}-{args.seed}.csv"
        path = write_employee_csv(
            Path(tmp) / name, rows=args.rows, employees=max(args.rows // 5, 10), seed=args.seed
        )
        info = _drop(settings, path, "employees")
    _out(f"dropped {args.rows} synthetic project rows as {info.key} into {_where(settings)}")
    _out("watch the run in the Prefect UI; results appear on the dashboard's employees page")
    return 0


def _file_command(sub: Any, name: str, handler: Any, **texts: str) -> argparse.ArgumentParser:
    """A command on one file: FILE --dataset NAME."""
    p: argparse.ArgumentParser = sub.add_parser(name, **texts)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--dataset", required=True, metavar="NAME")
    p.set_defaults(handler=handler)
    return p


def register(sub: Any) -> None:
    p = sub.add_parser(
        "up",
        help="start the whole service in the foreground (Ctrl-C stops it)",
        description="Start the Prefect server, the served deployments, the folder "
        "watcher, the webhook receiver and the dashboard; print their URLs.",
    )
    p.set_defaults(handler=cmd_up)

    _file_command(
        sub,
        "drop",
        cmd_drop,
        help="put a file into landing/<dataset>/ of the configured store",
        description="Put FILE into landing/<DATASET>/ of the configured object store "
        "(local folder, or S3 when PA_S3_ENDPOINT is set); a running service picks it up.",
    )
    p = _file_command(
        sub,
        "process",
        cmd_process,
        help="run the pipeline once on a file, synchronously",
        description="Drop FILE into landing/<NAME>/ and run the process-object flow "
        "on it now, without `up`. Exit 0 on success, 2 when the input is rejected "
        "(reason on stderr), 1 on other errors.",
    )
    p.add_argument(
        "--contract", metavar="PATH", help="contract file (default: <contracts dir>/<NAME>.yaml)"
    )
    p.add_argument("--verbose", "-v", action="store_true", help="also print Prefect's run logs")

    p = sub.add_parser(
        "release-dataset",
        help="release the contract's analyses over a dataset as a whole, now",
        description="Run the release-dataset flow on NAME now: every file of the dataset so "
        "far (files: append) or its latest snapshot (files: snapshot), each person's rows "
        "bounded over all of them by release.max_rows_per_unit, at release.epsilon. A release "
        "over the same files as the last one spends nothing. Exit 0 when released or "
        "nothing new, 1 when the budget is spent or on errors, 2 when the contract is refused.",
    )
    p.add_argument("dataset", metavar="NAME")
    p.add_argument(
        "--contract", metavar="PATH", help="contract file (default: <contracts dir>/<NAME>.yaml)"
    )
    p.add_argument("--verbose", "-v", action="store_true", help="also print Prefect's run logs")
    p.set_defaults(handler=cmd_release_dataset)

    p = sub.add_parser(
        "demo",
        help="drop a synthetic employee file (example contract)",
        description="Generate synthetic employee project data and drop it into "
        "landing/employees/, so a running service shows results within a minute.",
    )
    p.add_argument("--rows", type=int, default=20_000, help="rows to generate (default 20000)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(handler=cmd_demo)
