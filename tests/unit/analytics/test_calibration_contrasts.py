"""Comparisons' differences and ratios: simultaneous 95% intervals, calibrated family-wise.

What "coverage" means for these kinds (decided here, documented in
``analytics.analyses.comparison.pairwise_contrasts``): in 95% of releases EVERY difference and EVERY
ratio interval of a comparison covers its value at once. That is what the dashboard says
("together they all cover their noise in 95 of 100 releases"), each single interval then
covers at least 95% of the time (what it says of any 95% interval), and a sentence that
picks the clear pairs among all of them is right as often as it says. The family-wise rate
is what is held to the 92–98% band here, for the whole family and for the differences and
the ratios alone (they cover at least as often as the whole; the ratios a little more).
The old Bonferroni intervals covered 98.5–99.5% family-wise: a noisy group's pairs miss
together, so the union bound counted one event many times.

Each release is one family per comparison, so the contract releases four comparisons at
once (three to nine groups of very different sizes, groups under 50 rows among them) to
have 800 families from 200 releases; the file is HR attrition with 15% of MonthlyIncome
blanked and its bounds at the 5th and 90th percentiles (``test_calibration.hr_variant``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.unit.analytics.coverage import CONTRASTS, Key, measure_coverage
from tests.unit.analytics.test_calibration import (
    HR_FIELDS,
    _report,
    hr_measures,
    hr_variant,
    one_row_per_person,
)

REPEATS = 200


def _keys(df: pl.DataFrame, column: str) -> list[str]:
    return sorted(df[column].unique().to_list())


@pytest.mark.slow
def test_differences_and_ratios_are_simultaneous_95_percent_intervals(real_datasets: Path) -> None:
    df, (lo, hi) = hr_variant(real_datasets)
    raw = pl.read_csv(Path(real_datasets) / "hr_attrition.csv")
    df = df.with_columns(raw.select("Department", "JobRole", "MaritalStatus"))
    contract = one_row_per_person(
        "hr",
        {
            "EducationField": {"role": "dimension", "keys": HR_FIELDS},
            "Department": {"role": "dimension", "keys": _keys(df, "Department")},
            "JobRole": {"role": "dimension", "keys": _keys(df, "JobRole")},
            "MaritalStatus": {"role": "dimension", "keys": _keys(df, "MaritalStatus")},
            **hr_measures(lo, hi),
        },
        [
            {"kind": "comparison", "measure": "MonthlyIncome", "by": "EducationField"},
            {"kind": "comparison", "measure": "Age", "by": "Department"},
            {"kind": "comparison", "measure": "TotalWorkingYears", "by": "JobRole"},
            {"kind": "comparison", "measure": "Age", "by": "MaritalStatus"},
        ],
        per_release=8.0,
    )

    def case(key: Key) -> str | None:
        _, metric, _, group = key
        if metric not in CONTRASTS:
            return None
        return next(k for k, _ in group if not k.endswith("_vs"))  # the comparison's dimension

    cov = measure_coverage(df, contract, REPEATS, case)
    _report(cov, "hr")
    for family in ("contrast family", *(f"{kind} family" for kind in CONTRASTS)):
        seen = [h for (k, _), hs in cov.hits.items() if k == family for h in hs]
        assert len(seen) >= 4 * REPEATS * 0.9, f"too few {family} releases"
        rate = sum(seen) / len(seen)
        assert 0.92 <= rate <= 0.98, f"{family}: coverage {rate:.4f} over {len(seen)}"
    for kind in CONTRASTS:
        single = [h for (k, _), hs in cov.hits.items() if k == kind for h in hs]
        assert sum(single) / len(single) >= 0.95, f"{kind}: a single interval covers < 95%"
