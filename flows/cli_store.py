"""`privacy-analytics releases|budget|runs`: what the aggregate store holds.

    privacy-analytics releases --dataset NAME [--limit N] [--json]   # values, intervals, ε
    privacy-analytics budget ...                                     # flows.cli_budget
    privacy-analytics runs [--dataset NAME] [--limit N] [--json]     # recent runs, exact counts

They read the store read-only at PA_STORE_URL (on a new install, an empty list). Everything
printed is an aggregate, a count or bookkeeping; run counts are exact (operator
information, not differentially private).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from analytics.store import ReleaseInfo, RunRow, StoreNotCreated
from flows import cli_budget
from flows import cli_output as out
from flows.cli_output import EXIT_OK, listing_command, num, table, when

EXACT_COUNTS = "exact counts: operator information, not differentially private"


def register(sub: Any) -> None:  # argparse._SubParsersAction
    listing_command(
        sub,
        "releases",
        _releases,
        dataset="dataset name",
        dataset_required=True,
        limit=100,
        what="releases to show",
        help="print a dataset's published DP values with their 95%% intervals and ε",
        description="Print the differentially private releases of a dataset, newest first: "
        "each value with its interval (a 95% interval of the noise added to the value as "
        "defined, after clamping and per-person truncation; simultaneous for differences and "
        "ratios; a rough range, not a 95% interval, for quantiles; a prediction interval for "
        "forecasts) and noise scale, the ε/δ the release spent, the source object version and "
        "the insights. The quality release's shares (missing, clamped, truncated) are also "
        "printed as percentages.",
    )

    cli_budget.register(sub)

    listing_command(
        sub,
        "runs",
        _runs,
        dataset="only runs of this dataset",
        limit=20,
        what="runs to show",
        help="print recent pipeline runs with status, exact counts (operator information, "
        "not differentially private) and reason",
        description="Print recent pipeline runs, newest first: status (completed, rejected, "
        "budget_exhausted, duplicate, failed, running), row and column counts, values set to "
        "null, ε spent, the counts-only reason and notes. The counts are exact: operator "
        "information, not differentially private; do not pass them on to viewers.",
    )


# --------------------------------------------------------------------------- releases


def _group(group: dict[str, str]) -> str:
    return "" if not group else "[" + ", ".join(f"{k}={v}" for k, v in group.items()) + "]"


def _interval(lower: float | None, upper: float | None, metric: str = "") -> str:
    """A value's interval, named for what it is."""
    if lower is None or upper is None:
        return ""
    span = f"{num(lower)} to {num(upper)}"
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


def _release_lines(r: ReleaseInfo) -> Iterator[str]:
    cost = "no extra ε" if r.epsilon is None else f"ε={num(r.epsilon)} δ={num(r.delta)}"
    if r.rho is not None:  # zCDP: its ρ, and the ε it alone converts to at the δ cap
        cost = f"ρ={num(r.rho)} (ε={num(r.epsilon)} alone) δ={num(r.delta)}"
    yield f"#{r.id} {r.name}  ({r.analysis}, {r.mechanism}, {cost})  {when(r.created_at)}"
    yield (
        f"    from {r.bucket}/{r.key} (etag {r.etag}), run {r.run_id}, "
        f"contract v{r.contract_version}"
    )
    rows = [
        [
            v.metric,
            " ".join(x for x in (v.column or "", _group(v.group)) if x),
            num(v.value),
            _interval(v.lower, v.upper, v.metric),
            "" if v.scale is None else f"scale {num(v.scale)}",
        ]
        for v in r.values
    ]
    yield from out.indented(table(["metric", "of", "value", "interval", "noise"], rows))
    if r.analysis == "quality":
        yield from _share_lines(r)
    for text in r.insights:
        yield f"    insight: {text}"


def _releases(args: argparse.Namespace) -> int:
    try:
        with out.open_reader() as store:
            rels = store.releases(args.dataset, limit=args.limit)
    except StoreNotCreated:
        return out.nothing_yet(args, {"dataset": args.dataset, "releases": []})
    if args.json:
        out.dump({"dataset": args.dataset, "releases": [asdict(r) for r in rels]})
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


# --------------------------------------------------------------------------- runs


def _run_row(r: RunRow) -> list[str]:
    counts = "/".join(
        "-" if x is None else str(x) for x in (r.rows_in, r.rows_out, r.rows_suppressed)
    )
    return [
        when(r.started_at),
        r.status,
        r.dataset,
        r.key,
        counts,
        "-" if r.values_nulled is None else str(r.values_nulled),
        num(r.epsilon_spent) if r.epsilon_spent else "0",
        r.reason or "",
        r.notes or "",
    ]


def _runs(args: argparse.Namespace) -> int:
    try:
        with out.open_reader() as store:
            rows = store.runs(limit=args.limit, dataset=args.dataset)
    except StoreNotCreated:
        return out.nothing_yet(args, {"runs": []})
    if args.json:
        out.dump({"runs": [asdict(r) for r in rows]})
        return EXIT_OK
    if not rows:
        print("no runs yet" + (f" for dataset {args.dataset}" if args.dataset else ""))
        return EXIT_OK
    print(EXACT_COUNTS)
    header = ["started", "status", "dataset", "object", "rows in/out/suppressed",
              "values nulled", "ε", "reason", "notes"]
    for line in table(header, [_run_row(r) for r in rows]):
        print(line)
    return EXIT_OK
