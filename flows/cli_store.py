"""`privacy-analytics releases|budget|runs`: what the aggregate store holds; `budget set`:
the one operator action that changes a dataset's pinned budget terms.

    privacy-analytics releases --dataset NAME [--limit N] [--json]   # values, intervals, ε
    privacy-analytics budget [--dataset NAME] [--limit N] [--json]   # cap, spent, remaining,
                                                                     # ledger, pinned terms
    privacy-analytics budget set NAME --reason "..." [--epsilon-cap X] [--delta-cap X]
        [--policy lifetime|window] [--window W] [--privacy-unit COLUMN | --rows-are-people]
        [--max-rows-per-unit N] [--force] [--actor NAME]
    privacy-analytics runs [--dataset NAME] [--limit N] [--json]     # recent runs, exact counts

The listing commands open the store read-only (``analytics.queries``) at PA_STORE_URL
(default: the SQLite file in the state dir); on a new install, before anything was
published, they print an empty list. Everything printed is an aggregate, a count or
bookkeeping; run counts are exact (operator information, not differentially private).
``budget set`` opens the store read-write and logs every change it makes.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from analytics.queries import (
    BudgetStatus,
    LedgerEntry,
    ReadOnlyStore,
    ReleaseInfo,
    RunRow,
    StoreNotCreated,
    TermsChange,
)
from analytics.terms import ROWS_ARE_PEOPLE, WINDOWS, effect_of, format_number
from flows.settings import Settings
from privacy.errors import TermsChangeRefused

EXIT_OK = 0

#: what the listing commands print on a new install, before the store exists
NOTHING_YET = (
    "nothing published yet: the aggregate store does not exist; start the pipeline "
    "('privacy-analytics up') and drop a file into landing/<dataset>/"
)
EXACT_COUNTS = "exact counts: operator information, not differentially private"


def register(sub: Any) -> None:  # argparse._SubParsersAction
    rel = sub.add_parser(
        "releases",
        help="print a dataset's published DP values with their 95%% intervals and ε",
        description="Print the differentially private releases of a dataset, newest first: "
        "each value with its interval (a 95% interval of the noise added to the value as "
        "defined, after clamping and per-person truncation; simultaneous for differences and "
        "ratios; a rough range, not a 95% interval, for quantiles; a prediction interval for "
        "forecasts) and noise scale, the ε/δ the release spent, the source object version and "
        "the insights. The quality release's shares (missing, clamped, truncated) are also "
        "printed as percentages.",
    )
    rel.add_argument("--dataset", required=True, help="dataset name")
    rel.add_argument("--limit", type=_positive, default=100, help="releases to show (default 100)")
    rel.add_argument("--json", action="store_true", help="print JSON instead of text")
    rel.set_defaults(handler=_releases)

    bud = sub.add_parser(
        "budget",
        help="print privacy budgets: cap, spent, remaining, the ledger and the pinned terms; "
        "'budget set' changes pinned terms",
        description="Print each dataset's privacy budget (or one with --dataset) in its "
        "current window: cap, spent (committed), reserved by runs in progress, remaining "
        "(cap - spent), the ledger entries, newest first, its pinned budget terms and their "
        "recent changes. 'privacy-analytics budget set DATASET ...' changes pinned terms.",
    )
    bud.add_argument("--dataset", default=None, help="only this dataset")
    bud.add_argument(
        "--limit",
        type=_positive,
        default=50,
        help="ledger entries and terms changes per dataset (default 50)",
    )
    bud.add_argument("--json", action="store_true", help="print JSON instead of text")
    bud.set_defaults(handler=_budget)
    _register_budget_set(bud.add_subparsers(dest="budget_action", metavar="ACTION"))

    runs = sub.add_parser(
        "runs",
        help="print recent pipeline runs with status, exact counts (operator information, "
        "not differentially private) and reason",
        description="Print recent pipeline runs, newest first: status (completed, rejected, "
        "budget_exhausted, duplicate, failed, running), row and column counts, values set to "
        "null, ε spent, the counts-only reason and notes. The counts are exact: operator "
        "information, not differentially private; do not pass them on to viewers.",
    )
    runs.add_argument("--dataset", default=None, help="only runs of this dataset")
    runs.add_argument("--limit", type=_positive, default=20, help="runs to show (default 20)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of text")
    runs.set_defaults(handler=_runs)


def _register_budget_set(actions: Any) -> None:
    bset = actions.add_parser(
        "set",
        help="change a dataset's pinned budget terms (logged; weakening needs --force)",
        description="Change the budget terms pinned for DATASET at its first registration: "
        "ε cap, δ cap, policy, window, privacy unit, rows per unit. Lowering a cap is always "
        "allowed (below what is spent, the dataset is then exhausted); raising a cap and any "
        "policy, window or privacy unit change weaken the guarantee and need --force. Every "
        "change is appended to the dataset's terms log with --actor and --reason. Afterwards "
        "the pipeline accepts a contract with the new terms. Exit 0 when changed, 2 when "
        "refused (needs --force, unknown dataset, nothing to change), 1 on other errors.",
    )
    bset.add_argument("set_dataset", metavar="DATASET", help="dataset name")
    bset.add_argument("--epsilon-cap", type=_cap, default=None, metavar="X", help="new ε cap")
    bset.add_argument("--delta-cap", type=_delta, default=None, metavar="X",
                      help="new δ cap, in [0, 1)")
    bset.add_argument("--policy", choices=("lifetime", "window"), default=None,
                      help="lifetime: spend adds up forever; window: resets every window")
    bset.add_argument("--window", choices=WINDOWS, default=None,
                      help="calendar period of policy window")
    unit = bset.add_mutually_exclusive_group()
    unit.add_argument("--privacy-unit", default=None, metavar="COLUMN",
                      help="the column naming the person each row belongs to")
    unit.add_argument("--rows-are-people", action="store_true",
                      help="every row is a different person (one row per person)")
    bset.add_argument("--max-rows-per-unit", type=_positive, default=None, metavar="N",
                      help="rows one person may contribute to a file")
    bset.add_argument("--reason", required=True,
                      help="why the terms change (required; kept in the terms log)")
    bset.add_argument("--force", action="store_true",
                      help="apply changes that weaken the guarantee")
    bset.add_argument("--actor", default=None, metavar="NAME",
                      help="who makes the change (default: the OS user name)")
    bset.set_defaults(handler=_budget_set)


def _number_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number")
    return value


def _cap(text: str) -> float:
    value = _number_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _delta(text: str) -> float:
    value = _number_arg(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be at least 0 and below 1")
    return value


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


def _interval(lower: float | None, upper: float | None, metric: str = "") -> str:
    """A value's interval, named for what it is."""
    if lower is None or upper is None:
        return ""
    span = f"{_num(lower)} to {_num(upper)}"
    if metric.startswith("quantile_"):
        return f"(rough range {span}, not a 95% CI)"
    if metric == "forecast":
        return f"(95% prediction interval {span})"
    if metric in ("difference", "ratio"):
        return f"(simultaneous 95% CI {span})"
    return f"(95% CI {span})"


#: the quality release's shares, as the text output words them
_SHARES = {
    "missing_share": "of {column} values missing",
    "clamped_low_share": "of {column} values below the lower bound (count as the bound)",
    "clamped_high_share": "of {column} values above the upper bound (count as the bound)",
    "over_bound_share": "of people with more rows than the per-person bound",
    "truncated_share": "of rows left out by the per-person bound (at least)",
}

#: what the intervals of `releases` cover, said once above the releases
INTERVALS = (
    "every value is differentially private; a 95% CI covers the noise added to the value as "
    "defined (after clamping to the bounds and per-person truncation, over the values "
    "present), not clamping, missing values or truncation, which the quality release "
    "discloses as shares; quantile ranges are rough guides, not 95% CIs"
)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _share_lines(r: ReleaseInfo) -> Iterator[str]:
    """The quality release's shares in words: `14.2% of salary values above the upper bound
    (count as the bound) (95% CI 11.1% to 17.3%)`."""
    for v in r.values:
        wording = _SHARES.get(v.metric)
        if wording is None:
            continue
        ci = "" if v.lower is None or v.upper is None else (
            f" (95% CI {_pct(v.lower)} to {_pct(v.upper)})")
        yield f"    share: {_pct(v.value)} {wording.format(column=v.column or '')}{ci}"


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
            _interval(v.lower, v.upper, v.metric),
            "" if v.scale is None else f"scale {_num(v.scale)}",
        ]
        for v in r.values
    ]
    for line in _table(["metric", "of", "value", "interval", "noise"], rows):
        yield "    " + line
    if r.analysis == "quality":
        yield from _share_lines(r)
    for text in r.insights:
        yield f"    insight: {text}"


def _releases(args: argparse.Namespace) -> int:
    try:
        with _store() as store:
            rels = store.releases(args.dataset, limit=args.limit)
    except StoreNotCreated:
        return _nothing_yet(args, {"dataset": args.dataset, "releases": []})
    if args.json:
        _dump({"dataset": args.dataset, "releases": [asdict(r) for r in rels]})
        return EXIT_OK
    if not rels:
        print(f"dataset {args.dataset}: no releases yet")
        return EXIT_OK
    print(f"dataset {args.dataset}: {len(rels)} release(s), newest first")
    print(f"({INTERVALS})")
    for r in rels:
        print()
        for line in _release_lines(r):
            print(line)
    return EXIT_OK


# --------------------------------------------------------------------------- new install


def _nothing_yet(args: argparse.Namespace, empty: dict[str, Any]) -> int:
    """A new install (no store file yet): an empty JSON answer, or a friendly line."""
    if args.json:
        _dump(empty)
    else:
        print(NOTHING_YET)
    return EXIT_OK


# --------------------------------------------------------------------------- budget


def _unit_text(privacy_unit: str | None, max_rows: int | None) -> str:
    if max_rows is None:
        return "privacy unit not pinned yet (the next contract seen pins it)"
    if privacy_unit is None:
        return f"privacy unit: {ROWS_ARE_PEOPLE} (one row per person)"
    return f"privacy unit {privacy_unit}, at most {max_rows} row(s) per person in a file"


def _change_text(c: TermsChange) -> str:
    return c.new if c.old is None else f"{c.old} -> {c.new}"


def _change_effect(c: TermsChange) -> str:
    if c.old is None:
        return "pinned"
    effect = effect_of(c.setting, c.weakens)
    if c.weakens and "weakens" not in effect:
        effect += ": weakens the guarantee"
    return effect + (" (forced)" if c.forced else "")


def _budget_lines(
    b: BudgetStatus, entries: list[LedgerEntry], changes: list[TermsChange]
) -> Iterator[str]:
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
    policy = b.policy if b.window is None else f"{b.policy} ({b.window})"
    yield (
        f"    pinned terms: ε cap {format_number(b.epsilon_cap)}, δ cap "
        f"{format_number(b.delta_cap)}, policy {policy}, "
        f"{_unit_text(b.privacy_unit, b.max_rows_per_unit)}"
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
    yield (
        f"    pinned terms log ({len(changes)} newest entr"
        f"{'y' if len(changes) == 1 else 'ies'}):"
    )
    log_rows = [
        [
            str(c.id),
            _time(c.changed_at),
            c.setting,
            _change_text(c),
            _change_effect(c),
            c.actor,
            c.reason,
        ]
        for c in changes
    ]
    for line in _table(["id", "time", "setting", "value", "effect", "actor", "reason"], log_rows):
        yield "    " + line


def _budget(args: argparse.Namespace) -> int:
    try:
        with _store() as store:
            names = [args.dataset] if args.dataset else [d.name for d in store.datasets()]
            statuses = [
                (
                    store.budget(n),
                    store.ledger(n, limit=args.limit),
                    store.terms_changes(n, limit=args.limit),
                )
                for n in names
            ]
    except StoreNotCreated:
        return _nothing_yet(args, {"datasets": []})
    if args.json:
        _dump(
            {
                "datasets": [
                    {
                        **asdict(b),
                        "rows_are_people": b.rows_are_people,
                        "ledger": [asdict(e) for e in entries],
                        "terms_changes": [asdict(c) for c in changes],
                    }
                    for b, entries, changes in statuses
                ]
            }
        )
        return EXIT_OK
    if not statuses:
        print("no datasets yet: a dataset appears after its first file is processed")
        return EXIT_OK
    for i, (b, entries, changes) in enumerate(statuses):
        if i:
            print()
        for line in _budget_lines(b, entries, changes):
            print(line)
    return EXIT_OK


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "unknown"


def _budget_set(args: argparse.Namespace) -> int:
    from analytics.store import AggregateStore  # the writer (and Alembic) only when needed

    dataset = args.set_dataset
    url = Settings().aggregate_store_url
    try:
        store = AggregateStore(url, create=False)
    except StoreNotCreated:
        raise TermsChangeRefused(
            f"no dataset '{dataset}': nothing has been published yet (the aggregate store "
            "does not exist); a dataset appears after its first file is processed"
        ) from None
    with store:
        changes = store.set_terms(
            dataset,
            reason=args.reason,
            actor=args.actor if args.actor is not None else _os_user(),
            force=args.force,
            epsilon_cap=args.epsilon_cap,
            delta_cap=args.delta_cap,
            policy=args.policy,
            window=args.window,
            privacy_unit=args.privacy_unit,
            rows_are_people=args.rows_are_people,
            max_rows_per_unit=args.max_rows_per_unit,
        )
    first, last = changes[0], changes[-1]
    entries = f"entry {first.id}" if first is last else f"entries {first.id}-{last.id}"
    print(
        f"dataset {dataset}: pinned budget terms changed by {first.actor} "
        f"({len(changes)} change{'' if first is last else 's'}, terms log {entries})"
    )
    for line in _table(
        ["setting", "old -> new", "effect"],
        [[c.setting, _change_text(c), _change_effect(c)] for c in changes],
    ):
        print("    " + line)
    weakening = [c.setting for c in changes if c.weakens]
    if weakening:
        print(f"these changes weaken the guarantee: {', '.join(weakening)}")
    else:
        print("none of these changes weakens the guarantee")
    with _store() as reader:
        b = reader.budget(dataset)
    print(
        f"now: ε cap {format_number(b.epsilon_cap)}, spent {_num(b.epsilon_spent)}, remaining "
        f"{_num(b.epsilon_remaining)}{'  EXHAUSTED' if b.exhausted else ''}; contracts of "
        f"{dataset} must carry the new terms"
    )
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
        "-" if r.values_nulled is None else str(r.values_nulled),
        _num(r.epsilon_spent) if r.epsilon_spent else "0",
        r.reason or "",
        r.notes or "",
    ]


def _runs(args: argparse.Namespace) -> int:
    try:
        with _store() as store:
            rows = store.runs(limit=args.limit, dataset=args.dataset)
    except StoreNotCreated:
        return _nothing_yet(args, {"runs": []})
    if args.json:
        _dump({"runs": [asdict(r) for r in rows]})
        return EXIT_OK
    if not rows:
        print("no runs yet" + (f" for dataset {args.dataset}" if args.dataset else ""))
        return EXIT_OK
    print(EXACT_COUNTS)
    header = ["started", "status", "dataset", "object", "rows in/out/suppressed",
              "values nulled", "ε", "reason", "notes"]
    for line in _table(header, [_run_row(r) for r in rows]):
        print(line)
    return EXIT_OK
