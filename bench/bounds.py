"""Benchmark: a mean's error with ``bounds: auto`` against hand-set bounds, on real files.

    .venv/bin/python bench/bounds.py [--repeats 100]

For each measure of the vendored real datasets (tests/data), one release per repeat at
ε = 1 of a contract with only the summary analysis, under three kinds of bounds:

* ``tight``: the true range of the file's values (min and max, which no public contract
  could know: the best case);
* ``auto``: ``bounds: auto`` (estimated under DP at each release, 10% of its ε);
* ``draft``: the old draft's order-of-magnitude bounds (0, or minus, the power of ten above
  the largest absolute value).

The error is |released mean − true mean of the values present|. It prints the median
error of each over the repeats and the ratios auto/tight (target at most 1.5) and
auto/draft (target at most 1/3), all from one run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.analyses import plan_release  # noqa: E402
from privacy.budget import PrivacyLoss  # noqa: E402
from privacy.contract import Contract  # noqa: E402

DATA = ROOT / "tests" / "data"
#: (file, measure, person column or None, rows per person)
CASES: list[tuple[str, str, str | None, int]] = [
    ("hr_attrition.csv", "MonthlyIncome", None, 1),
    ("hr_attrition.csv", "YearsAtCompany", None, 1),
    ("hr_attrition.csv", "DailyRate", None, 1),
    ("wage_survey.csv", "wage", None, 1),
    ("wage_survey.csv", "age", None, 1),
    ("covid_testing.csv", "col_rec_tat", "subject_id", 20),
    ("covid_testing.csv", "rec_ver_tat", "subject_id", 20),
    ("covid_testing.csv", "ct_result", "subject_id", 20),
]


def _contract(measure: str, bounds: Any, unit: str | None, k: int) -> Contract:
    columns: dict[str, Any] = {measure: {"role": "measure", "type": "float", "bounds": bounds}}
    data: dict[str, Any] = {
        "dataset": "bench",
        "budget": {"epsilon_cap": 1e6},
        "columns": columns,
        "analyses": [{"kind": "summary"}],
    }
    if unit:
        columns[unit] = {"role": "identifier", "action": "pseudonymize"}
        data |= {"privacy_unit": unit, "max_rows_per_unit": k}
    else:
        data |= {"rows_are_people": True}
    return Contract.model_validate(data)


def _draft_bounds(values: pl.Series) -> tuple[float, float]:
    top = float(values.abs().max())  # type: ignore[arg-type]
    power = 10.0 ** (math.floor(math.log10(top)) + 1) if top > 0 else 1.0
    return (0.0 if float(values.min()) >= 0 else -power, power)  # type: ignore[arg-type]


def _errors(frame: pl.DataFrame, contract: Contract, measure: str, truth: float, n: int) -> list[float]:
    plan = plan_release(frame.lazy(), contract, PrivacyLoss(1.0, 0.0))
    out = []
    try:
        for _ in range(n):
            rs = plan.run()
            means = [v for r in rs.releases for v in r.values if v.metric == "mean" and v.column == measure]
            out.append(abs(means[0].value - truth) if means else math.inf)
    finally:
        plan.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument(
        "--share", type=float, default=0.1, help="share of ε for the bounds (default 0.1)"
    )
    args = parser.parse_args()
    print(f"{'measure':<28} {'tight':>10} {'auto':>10} {'draft':>10} {'auto/tight':>11} {'auto/draft':>11}")
    worst_tight, worst_draft = 0.0, 0.0
    for file, measure, unit, k in CASES:
        cols = [measure] + ([unit] if unit else [])
        raw = pl.read_csv(DATA / file, infer_schema_length=None).select(cols)
        frame = raw.with_columns(pl.col(measure).cast(pl.Float64, strict=False))
        values = frame[measure].drop_nulls()
        truth = float(values.mean())  # type: ignore[arg-type]
        tight = (float(values.min()), float(values.max()))  # type: ignore[arg-type]
        if tight[0] == tight[1]:
            continue
        med = {}
        auto = {"auto": True, "share": args.share}
        for name, bounds in (("tight", tight), ("auto", auto), ("draft", _draft_bounds(values))):
            errs = _errors(frame, _contract(measure, bounds, unit, k), measure, truth, args.repeats)
            med[name] = statistics.median(errs)
        r_tight, r_draft = med["auto"] / med["tight"], med["auto"] / med["draft"]
        worst_tight, worst_draft = max(worst_tight, r_tight), max(worst_draft, r_draft)
        label = f"{file.removesuffix('.csv')}:{measure}"
        print(
            f"{label:<28} {med['tight']:>10.4g} {med['auto']:>10.4g} {med['draft']:>10.4g} "
            f"{r_tight:>11.2f} {r_draft:>11.2f}"
        )
    print(f"bounds: worst auto/tight={worst_tight:.2f} (target <= 1.5) "
          f"worst auto/draft={worst_draft:.2f} (target <= 0.33)")


if __name__ == "__main__":
    main()
