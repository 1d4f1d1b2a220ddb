"""`privacy-analytics releases|budget|runs`: what the aggregate store holds, read-only.

    privacy-analytics releases --dataset NAME [--limit N] [--json]   # values, 95% CIs, ε
    privacy-analytics budget [--dataset NAME] [--limit N] [--json]   # cap, spent, remaining, ledger
    privacy-analytics runs [--dataset NAME] [--limit N] [--json]     # recent runs, counts, reason

The store is opened read-only (``analytics.queries``) at PA_STORE_URL (default: the SQLite
file in the state dir). Everything printed is an aggregate, a count or bookkeeping.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from analytics.queries import BudgetStatus, LedgerEntry, ReadOnlyStore, ReleaseInfo, RunRow
from flows.settings import Settings

EXIT_OK = 0


def register(sub: Any) -> None:  # argparse._SubParsersAction
    rel = sub.add_parser(
        "releases",
        help="print a dataset's published DP values with their 95%% intervals and ε",
        description="Print the differentially private releases of a dataset, newest first: "
        "each value with its 95% interval and noise scale, the ε/δ the release spent, the "
        "source object version and the insights.",
    )
    rel.add_argument("--dataset", required=True, help="dataset name")
    rel.add_argument("--limit", type=_positive, default=100, help="releases to show (default 100)")
    rel.add_argument("--json", action="store_true", help="print JSON instead of text")
    rel.set_defaults(handler=_releases)

    bud = sub.add_parser(
        "budget",
        help="print privacy budgets: cap, spent, remaining and the ledger entries",
        description="Print each dataset's privacy budget (or one with --dataset) in its "
        "current window: cap, spent (committed), reserved by runs in progress, remaining "
        "(cap - spent), and the ledger entries, newest first.",
    )
    bud.add_argument("--dataset", default=None, help="only this dataset")
    bud.add_argument(
        "--limit", type=_positive, default=50, help="ledger entries per dataset (default 50)"
    )
    bud.add_argument("--json", action="store_true", help="print JSON instead of text")
    bud.set_defaults(handler=_budget)

    runs = sub.add_parser(
        "runs",
        help="print recent pipeline runs with status, counts and reason",
        description="Print recent pipeline runs, newest first: status (completed, rejected, "
        "budget_exhausted, duplicate, failed, running), row and column counts, ε spent and "
        "the counts-only reason.",
    )
    runs.add_argument("--dataset", default=None, help="only runs of this dataset")
    runs.add_argument("--limit", type=_positive, default=20, help="runs to show (default 20)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of text")
    runs.set_defaults(handler=_runs)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _store() -> ReadOnlyStore:
    return ReadOnlyStore(Settings().aggregate_store_url)


# --------------------------------------------------------------------------- formatting


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _time(t: datetime | None) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _dump(data: Any) -> None:
    print(json.dumps(_jsonable(data), indent=2, ensure_ascii=False))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> Iterator[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    for line in (header, *rows):
        yield "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()


def _group(group: dict[str, str]) -> str:
    return "" if not group else "[" + ", ".join(f"{k}={v}" for k, v in group.items()) + "]"


def _interval(lower: float | None, upper: float | None) -> str:
    if lower is None or upper is None:
        return ""
    return f"(95% CI {_num(lower)} to {_num(upper)})"


# --------------------------------------------------------------------------- releases


def _release_lines(r: ReleaseInfo) -> Iterator[str]:
    cost = "no extra ε" if r.epsilon is None else f"ε={_num(r.epsilon)} δ={_num(r.delta)}"
    yield f"#{r.id} {r.name}  ({r.analysis}, {r.mechanism}, {cost})  {_time(r.created_at)}"
    yield (
        f"    from {r.bucket}/{r.key} (etag {r.etag}), run {r.run_id}, "
        f"contract v{r.contract_version}"
    )
    rows = [
        [
            v.metric,
            " ".join(x for x in (v.column or "", _group(v.group)) if x),
            _num(v.value),
            _interval(v.lower, v.upper),
            "" if v.scale is None else f"scale {_num(v.scale)}",
        ]
        for v in r.values
    ]
    for line in _table(["metric", "of", "value", "interval", "noise"], rows):
        yield "    " + line
    for text in r.insights:
        yield f"    insight: {text}"


def _releases(args: argparse.Namespace) -> int:
    with _store() as store:
        rels = store.releases(args.dataset, limit=args.limit)
    if args.json:
        _dump({"dataset": args.dataset, "releases": [asdict(r) for r in rels]})
        return EXIT_OK
    if not rels:
        print(f"dataset {args.dataset}: no releases yet")
        return EXIT_OK
    print(
        f"dataset {args.dataset}: {len(rels)} release(s), newest first "
        "(every value is differentially private; intervals are 95%)"
    )
    for r in rels:
        print()
        for line in _release_lines(r):
            print(line)
    return EXIT_OK


# --------------------------------------------------------------------------- budget


def _budget_lines(b: BudgetStatus, entries: list[LedgerEntry]) -> Iterator[str]:
    scope = (
        "lifetime"
        if b.window_start is None
        else f"window: {b.window} starting {_time(b.window_start)}"
    )
    yield f"dataset {b.dataset} ({scope}){'  EXHAUSTED' if b.exhausted else ''}"
    yield from (
        "    " + line
        for line in _table(
            ["", "cap", "spent", "reserved", "remaining"],
            [
                [
                    "ε",
                    _num(b.epsilon_cap),
                    _num(b.epsilon_spent),
                    _num(b.epsilon_reserved),
                    _num(b.epsilon_remaining),
                ],
                [
                    "δ",
                    _num(b.delta_cap),
                    _num(b.delta_spent),
                    _num(b.delta_reserved),
                    _num(b.delta_remaining),
                ],
            ],
        )
    )
    yield f"    ledger ({len(entries)} newest entr{'y' if len(entries) == 1 else 'ies'}):"
    rows = [
        [
            str(e.id),
            e.state,
            _num(e.epsilon),
            _num(e.delta),
            _time(e.created_at),
            e.run_id,
            f"{e.key} ({e.etag})",
        ]
        for e in entries
    ]
    for line in _table(["id", "state", "ε", "δ", "time", "run", "object"], rows):
        yield "    " + line


def _budget(args: argparse.Namespace) -> int:
    with _store() as store:
        names = [args.dataset] if args.dataset else [d.name for d in store.datasets()]
        statuses = [(store.budget(n), store.ledger(n, limit=args.limit)) for n in names]
    if args.json:
        _dump(
            {
                "datasets": [
                    {**asdict(b), "ledger": [asdict(e) for e in entries]} for b, entries in statuses
                ]
            }
        )
        return EXIT_OK
    if not statuses:
        print("no datasets yet: a dataset appears after its first file is processed")
        return EXIT_OK
    for i, (b, entries) in enumerate(statuses):
        if i:
            print()
        for line in _budget_lines(b, entries):
            print(line)
    return EXIT_OK


# --------------------------------------------------------------------------- runs


def _run_row(r: RunRow) -> list[str]:
    counts = "/".join(
        "-" if x is None else str(x) for x in (r.rows_in, r.rows_out, r.rows_suppressed)
    )
    return [
        _time(r.started_at),
        r.status,
        r.dataset,
        r.key,
        counts,
        _num(r.epsilon_spent) if r.epsilon_spent else "0",
        r.reason or "",
    ]


def _runs(args: argparse.Namespace) -> int:
    with _store() as store:
        rows = store.runs(limit=args.limit, dataset=args.dataset)
    if args.json:
        _dump({"runs": [asdict(r) for r in rows]})
        return EXIT_OK
    if not rows:
        print("no runs yet" + (f" for dataset {args.dataset}" if args.dataset else ""))
        return EXIT_OK
    header = ["started", "status", "dataset", "object", "rows in/out/suppressed", "ε", "reason"]
    for line in _table(header, [_run_row(r) for r in rows]):
        print(line)
    return EXIT_OK
