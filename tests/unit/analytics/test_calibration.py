"""Calibration on the real datasets: every published 95% interval covers the quantity as
defined 92–98% of the time, per kind, overall and per group (groups under 50 rows too).

"The quantity as defined" is the non-private statistic of the rows OpenDP reads: a
measure's values clamped to the contract's bounds, sums and means over the values that are
present, rows of public keys only (see ``coverage.truths``, an independent plain-polars
reading). Every contract here has ``max_rows_per_unit`` at least the largest number of rows
one person has (checked by ``truths``), so the per-person truncation never drops a row and
that quantity is the same in every release.

Each test resolves the plan once (``plan_analyses``) and calls ``ReleasePlan.run()`` per
repeat (fresh OpenDP noise, which cannot be seeded): no exact noisy value is ever asserted.
Coverage is pooled per kind over a dataset's values (hundreds to thousands of intervals,
so the 92–98% band is 5–10 binomial standard errors wide); a case (e.g. "group < 50 rows")
with fewer intervals is held to the band or 4 standard errors, whichever is wider
(``Coverage.assert_calibrated``). Differences and ratios are simultaneous intervals: here
their per-interval coverage is held to at least 95%; their family-wise coverage (every
difference and ratio of a comparison at once, what the dashboard states) is held to the
band in ``test_calibration_contrasts.py``, which has enough families for it. Count
intervals cover a little over 95% where the noise is discrete and small (the exact
discrete quantile can only step between integers).

The files are real (``tests/data``); where a property is needed that the file lacks, a
variant is derived here, deterministically: ``blank_out`` sets a fixed-seed random 15% of a
measure to null, and ``bound_at_quantile`` picks a public bound that clamps about 10% of
the values (the 90th percentile; a lower bound at a low percentile clamps a few % below).
"""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from privacy.contract import Contract
from tests.unit.analytics.coverage import (
    CONTRASTS,
    Coverage,
    Key,
    blank_out,
    bound_at_quantile,
    measure_coverage,
)
from tests.unit.contracts import contract_of

#: kinds every dataset publishes with an interval (besides contrasts)
COMMON = ("count", "sum", "mean", "present", "missing_share", "clamped_high_share")


def _pseudonymize(df: pl.DataFrame, column: str) -> pl.DataFrame:
    return df.with_columns(
        pl.col(column)
        .cast(pl.String)
        .map_elements(lambda v: hashlib.sha256(f"k|{v}".encode()).hexdigest(), return_dtype=pl.String)
    )


def _report(cov: Coverage, dataset: str) -> None:
    """The coverage table (shown with ``pytest -s``; kept in the test log otherwise)."""
    print(f"\n{dataset}: {cov.repeats} releases in {cov.seconds:.1f} s")
    for kind, ds, case, repeats, n, rate in cov.table(dataset):
        print(f"  {kind:20s} {ds:8s} {case:28s} {repeats:5d} {n:7d} {rate:.4f}")


def _case_by_group(small: set[str]) -> object:
    """Case labels: "overall" (ungrouped values, per kind of release), "group" or
    "group < 50 rows" for per-group values, the comparison's measure for contrasts."""

    def case(key: Key) -> str | None:
        kind, metric, column, group = key
        if metric in CONTRASTS:
            return f"{column}"
        if not group or kind == "quality":
            return f"overall ({kind})"
        values = {v for _, v in group}
        if kind == "correlation":
            return f"{column} ~ {group[0][1]}"
        if kind == "trend":
            return "period"
        return "group < 50 rows" if values & small else "group"

    return case


def _per_interval_at_least_nominal(cov: Coverage) -> None:
    """A single difference or ratio interval covers at least 95% of the time (exactly 95%
    when its comparison has two groups: allow 3 binomial standard errors)."""
    for kind in CONTRASTS:
        seen = [h for (k, _), hs in cov.hits.items() if k == kind for h in hs]
        if seen:
            rate = sum(seen) / len(seen)
            slack = 3 * math.sqrt(0.95 * 0.05 / len(seen))
            assert rate >= 0.95 - slack, f"{kind}: per-interval coverage {rate:.4f} below 95%"


# --------------------------------------------------------------------------- HR attrition

HR_FIELDS = ["Human_Resources", "Life_Sciences", "Marketing", "Medical", "Other", "Technical_Degree"]


def budget(per_release: float) -> dict[str, float]:
    """The calibration contracts' budget: caps no repeat reaches, ``per_release`` each."""
    return {"epsilon_cap": 1e6, "delta": 1e-6, "epsilon_per_release": per_release}


def one_row_per_person(
    dataset: str, columns: dict[str, Any], analyses: list[dict[str, Any]], *, per_release: float
) -> Contract:
    """A calibration contract of a file of at most 5000 rows, one per person."""
    return contract_of(dataset, columns, analyses, max_rows_per_unit=1, max_rows_per_file=5000,
                       budget=budget(per_release))


def hr_measures(lo: float, hi: float) -> dict[str, Any]:
    """The measures of the HR attrition file, MonthlyIncome's public bounds ``lo``, ``hi``."""
    return {
        "MonthlyIncome": {"role": "measure", "type": "integer", "bounds": [lo, hi]},
        "TotalWorkingYears": {"role": "measure", "type": "integer", "bounds": [0, 40]},
        "Age": {"role": "measure", "type": "integer", "bounds": [18, 60]},
    }


def hr_variant(real_datasets: Path) -> tuple[pl.DataFrame, tuple[float, float]]:
    """HR attrition with 15% of MonthlyIncome blanked (seed 7), and MonthlyIncome's public
    bounds at its 5th and 90th percentiles (about 5% clamped low, 10% high)."""
    raw = pl.read_csv(Path(real_datasets) / "hr_attrition.csv")
    df = blank_out(
        raw.select("EducationField", "MonthlyIncome", "TotalWorkingYears", "Age"),
        "MonthlyIncome",
        0.15,
        seed=7,
    )
    bounds = (bound_at_quantile(df["MonthlyIncome"], 0.05), bound_at_quantile(df["MonthlyIncome"], 0.9))
    return df, bounds


HR_REPEATS = 300


@pytest.mark.slow
def test_hr_attrition_intervals_are_calibrated(real_datasets: Path) -> None:
    """One row per person; EducationField has a group of 27 rows (Human_Resources; 23 with
    an income); the correlation runs over the rows where both measures are present."""
    df, (lo, hi) = hr_variant(real_datasets)
    assert df.filter(pl.col("EducationField") == "Human_Resources").height < 50
    contract = one_row_per_person(
        "hr",
        {"EducationField": {"role": "dimension", "keys": HR_FIELDS}, **hr_measures(lo, hi)},
        [
            {"kind": "summary"},
            {"kind": "comparison", "measure": "MonthlyIncome", "by": "EducationField"},
            {"kind": "correlation", "measures": ["MonthlyIncome", "Age"]},
        ],
        per_release=4.0,
    )
    cov = measure_coverage(df, contract, HR_REPEATS, _case_by_group({"Human_Resources"}))
    _report(cov, "hr")
    cov.assert_calibrated((*COMMON, "clamped_low_share", "pearson_r"))
    _per_interval_at_least_nominal(cov)
    # the small group's mean is published in most releases, and its contrasts too
    small_means = cov.hits[("mean", "group < 50 rows")]
    assert len(small_means) >= 0.8 * HR_REPEATS


@pytest.mark.slow
def test_hr_attrition_intervals_are_calibrated_under_zcdp(real_datasets: Path) -> None:
    """The same file under ``accounting: zcdp``: OpenDP draws Gaussian noise (counts and sums)
    and Gumbel noise (quantiles); the intervals (normal laws, and the contrasts' common-shift
    family on Gaussian laws) cover as promised: a comparison's differences and ratios hold
    together at least 95% of the time."""
    df, (lo, hi) = hr_variant(real_datasets)
    contract = contract_of(
        "hr",
        {"EducationField": {"role": "dimension", "keys": HR_FIELDS}, **hr_measures(lo, hi)},
        [
            {"kind": "summary"},
            {"kind": "comparison", "measure": "MonthlyIncome", "by": "EducationField"},
            {"kind": "correlation", "measures": ["MonthlyIncome", "Age"]},
            {"kind": "distribution", "measure": "Age"},
        ],
        max_rows_per_unit=1,
        max_rows_per_file=5000,
        budget={"epsilon_cap": 1e6, "delta": 1e-6, "accounting": "zcdp", "rho_per_release": 0.05},
    )
    loss = contract.budget.release_loss
    cov = measure_coverage(df, contract, HR_REPEATS, _case_by_group({"Human_Resources"}), loss=loss)
    _report(cov, "hr (zcdp)")
    cov.assert_calibrated((*COMMON, "histogram", "pearson_r"))
    _per_interval_at_least_nominal(cov)
    family = cov.hits[("contrast family", "MonthlyIncome")]
    assert len(family) >= 0.8 * HR_REPEATS
    assert sum(family) / len(family) >= 0.95 - 3.5 * math.sqrt(0.95 * 0.05 / len(family))


# --------------------------------------------------------------------------- COVID testing

COVID_REPEATS = 200


def covid_variant(real_datasets: Path) -> tuple[pl.DataFrame, tuple[float, float]]:
    """COVID testing, pseudonymized: half of the people, chosen with a fixed seed, with all
    their rows (each release of the whole file takes about twice as long, and 200 of them
    would be half the suite's time), ct_result blanked further to 15% missing (seed 11;
    the file itself has 1.3% missing) and rec_ver_tat's public bounds at its 3rd and 90th
    percentiles (about 3% clamped low, 10% high)."""
    raw = pl.read_csv(Path(real_datasets) / "covid_testing.csv", infer_schema_length=20000)
    people = sorted(set(raw["subject_id"].to_list()))
    kept = sorted(random.Random(5).sample(people, len(people) // 2))
    df = _pseudonymize(raw.filter(pl.col("subject_id").is_in(kept)), "subject_id")
    df = df.select("subject_id", "result", "ct_result", "rec_ver_tat")
    extra = 0.15 - df["ct_result"].null_count() / df.height
    df = blank_out(df, "ct_result", extra, seed=11)
    r = df["rec_ver_tat"]
    return df, (bound_at_quantile(r, 0.03), bound_at_quantile(r, 0.9))


@pytest.mark.slow
def test_covid_testing_intervals_are_calibrated_with_a_privacy_unit(real_datasets: Path) -> None:
    """Several rows per person (``max_rows_per_unit`` 20, the most any person has, keeps
    every row); the quality shares are averages over people of their rows' shares."""
    df, (lo, hi) = covid_variant(real_datasets)
    assert df.group_by("subject_id").len()["len"].max() == 20  # (kept by the seed)
    contract = contract_of(
        "covid",
        {
            "result": {"role": "dimension", "keys": ["negative", "positive", "invalid"]},
            "ct_result": {"role": "measure", "type": "float", "bounds": [0, 45]},
            "rec_ver_tat": {"role": "measure", "type": "float", "bounds": [lo, hi]},
        },
        [{"kind": "summary"}, {"kind": "comparison", "measure": "rec_ver_tat", "by": "result"}],
        unit="subject_id", max_rows_per_unit=20, max_rows_per_file=20000, budget=budget(8.0),
    )
    cov = measure_coverage(df, contract, COVID_REPEATS, _case_by_group(set()))
    _report(cov, "covid")
    cov.assert_calibrated((*COMMON, "units"))
    _per_interval_at_least_nominal(cov)


# --------------------------------------------------------------------------- wage survey

WAGE_REPEATS = 250


def wage_variant(real_datasets: Path) -> tuple[pl.DataFrame, tuple[float, float]]:
    """Wage survey with 15% of age blanked (seed 3), and wage's public bounds at its 2nd
    and 90th percentiles (about 2% clamped low, 10% high)."""
    raw = pl.read_csv(Path(real_datasets) / "wage_survey.csv")
    df = blank_out(raw.select("year", "race", "maritl", "wage", "age"), "age", 0.15, seed=3)
    return df, (bound_at_quantile(df["wage"], 0.02), bound_at_quantile(df["wage"], 0.9))


@pytest.mark.slow
def test_wage_survey_trend_comparison_and_correlation_are_calibrated(real_datasets: Path) -> None:
    """Seven public years; race has a group of 37 rows ("4. Other"), marital status one of
    19 ("3. Widowed")."""
    df, (lo, hi) = wage_variant(real_datasets)
    races = sorted(df["race"].unique().to_list())
    marital = sorted(df["maritl"].unique().to_list())
    contract = one_row_per_person(
        "wages",
        {
            "year": {
                "role": "time",
                "type": "integer",
                "granularity": "year",
                "periods": {"start": 2003, "end": 2009},
            },
            "race": {"role": "dimension", "keys": races},
            "maritl": {"role": "dimension", "keys": marital},
            "wage": {"role": "measure", "type": "float", "bounds": [lo, hi]},
            "age": {"role": "measure", "type": "integer", "bounds": [18, 80]},
        },
        [
            {"kind": "summary"},
            {"kind": "trend", "time": "year", "measures": ["wage", "age"]},
            {"kind": "comparison", "measure": "wage", "by": "race"},
            {"kind": "comparison", "measure": "age", "by": "maritl"},
            {"kind": "correlation", "measures": ["wage", "age"]},
        ],
        per_release=8.0,
    )
    small = {"4. Other", "3. Widowed"}
    for column, key in (("race", "4. Other"), ("maritl", "3. Widowed")):
        assert df.filter(pl.col(column) == key).height < 50
    cov = measure_coverage(df, contract, WAGE_REPEATS, _case_by_group(small))
    _report(cov, "wages")
    cov.assert_calibrated((*COMMON, "clamped_low_share", "pearson_r"))
    _per_interval_at_least_nominal(cov)
