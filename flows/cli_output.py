"""What the store commands (``flows.cli_store``, ``flows.cli_budget``) share: the read-only
store, listing options, and numbers, times, tables and JSON as they print them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any

from analytics.store import ReadOnlyStore
from flows.settings import Settings

EXIT_OK = 0

#: what the listing commands print on a new install, before the store exists
NOTHING_YET = (
    "nothing published yet: the aggregate store does not exist; start the pipeline "
    "('privacy-analytics up') and drop a file into landing/<dataset>/"
)


def positive(text: str) -> int:
    """An argument type: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def listing_command(
    sub: Any, name: str, handler: Any, *, dataset: str, limit: int, what: str,
    dataset_required: bool = False, **texts: str,
) -> argparse.ArgumentParser:  # fmt: skip
    """A command that lists from the store: ``--dataset`` (its help: ``dataset``), ``--limit
    N`` (of ``what``, default ``limit``) and ``--json``."""
    p: argparse.ArgumentParser = sub.add_parser(name, **texts)
    p.add_argument("--dataset", required=dataset_required, default=None, help=dataset)
    p.add_argument("--limit", type=positive, default=limit, help=f"{what} (default {limit})")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=handler)
    return p


def open_reader() -> ReadOnlyStore:
    return ReadOnlyStore(Settings().aggregate_store_url)


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def when(t: datetime | None) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def dump(data: Any) -> None:
    print(json.dumps(_jsonable(data), indent=2, ensure_ascii=False))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Iterator[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    for line in (header, *rows):
        yield "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()


def indented(lines: Iterator[str]) -> Iterator[str]:
    return ("    " + line for line in lines)


def nothing_yet(args: argparse.Namespace, empty: dict[str, Any]) -> int:
    """A new install (no store file yet): an empty JSON answer, or a friendly line."""
    if args.json:
        dump(empty)
    else:
        print(NOTHING_YET)
    return EXIT_OK
