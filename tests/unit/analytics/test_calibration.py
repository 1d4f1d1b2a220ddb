"""Calibration on the real datasets: 95% intervals cover the non-private truth ~95% of the time.

Each file is masked first (identifiers dropped, the privacy unit replaced by a SHA-256
pseudonym), every measurement is resolved once, and the release set is drawn REPEATS times
with fresh OpenDP noise. Coverage is pooled per kind of value (counts, sums, means) over the
statistics of one dataset, so the 92–98% band is many standard errors wide.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from analytics.catalogue import plan_analyses
from privacy.budget import PrivacyLoss
from privacy.contract import Contract

REPEATS = 300


def _pseudonymize(df: pl.DataFrame, column: str) -> pl.DataFrame:
    return df.with_columns(
        pl.col(column)
        .cast(pl.String)
        .map_elements(
            lambda v: hashlib.sha256(f"k|{v}".encode()).hexdigest(), return_dtype=pl.String
        )
    )


def _coverage(
    contract: Contract, masked: pl.DataFrame, truth: dict[tuple[str, str | None, str], float]
) -> dict[str, list[bool]]:
    """Run the resolved plan REPEATS times; hits per metric kind."""
    loss = PrivacyLoss(contract.budget.epsilon_per_release, contract.budget.delta)
    plan = plan_analyses(masked.lazy(), contract, loss)
    hits: dict[str, list[bool]] = defaultdict(list)
    for _ in range(REPEATS):
        rs = plan.run()
        assert rs.loss.fits_within(loss)
        for release in rs.releases:
            for v in release.values:
                key = (v.metric, v.column, ",".join(v.group.values()))
                if key not in truth:
                    continue
                assert v.lower is not None and v.upper is not None
                hits[v.metric].append(v.lower <= truth[key] <= v.upper)
    return hits


def _assert_calibrated(hits: dict[str, list[bool]], kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        seen = hits[kind]
        assert len(seen) >= REPEATS, f"too few {kind} values released ({len(seen)})"
        rate = sum(seen) / len(seen)
        assert 0.92 <= rate <= 0.98, (
            f"{kind}: 95% intervals covered the truth {rate:.3f} of the time"
        )


@pytest.mark.slow
def test_hr_attrition_intervals_are_calibrated(real_datasets: Path) -> None:
    raw = pl.read_csv(Path(real_datasets) / "hr_attrition.csv")
    depts = ["Human_Resources", "Research_Development", "Sales"]
    contract = Contract.model_validate(
        {
            "dataset": "hr",
            "rows_are_people": True,
            "max_rows_per_unit": 1,
            "max_rows_per_file": 5000,
            "budget": {"epsilon_cap": 100, "delta": 1e-6, "epsilon_per_release": 2.0},
            "columns": {
                "Department": {"role": "dimension", "keys": depts},
                "MonthlyIncome": {"role": "measure", "type": "integer", "bounds": [0, 20000]},
                "Age": {"role": "measure", "type": "integer", "bounds": [18, 60]},
            },
            "analyses": [
                {"kind": "summary"},
                {"kind": "comparison", "measure": "MonthlyIncome", "by": "Department"},
            ],
        }
    )
    masked = raw.select("Department", "MonthlyIncome", "Age")
    truth: dict[tuple[str, str | None, str], float] = {("count", None, ""): masked.height}
    for m in ("MonthlyIncome", "Age"):
        truth[("sum", m, "")] = float(masked[m].sum())
        truth[("mean", m, "")] = float(masked[m].mean())  # type: ignore[arg-type]
    for row in (
        masked.group_by("Department")
        .agg(pl.len().alias("n"), pl.col("MonthlyIncome").sum().alias("s"))
        .iter_rows(named=True)
    ):
        d = row["Department"]
        truth[("count", "MonthlyIncome", d)] = row["n"]
        truth[("sum", "MonthlyIncome", d)] = float(row["s"])
        truth[("mean", "MonthlyIncome", d)] = row["s"] / row["n"]
    _assert_calibrated(_coverage(contract, masked, truth), ("count", "sum", "mean"))


@pytest.mark.slow
def test_covid_testing_intervals_are_calibrated_with_a_privacy_unit(real_datasets: Path) -> None:
    raw = pl.read_csv(Path(real_datasets) / "covid_testing.csv", infer_schema_length=20000)
    masked = _pseudonymize(raw, "subject_id").drop("fake_first_name", "fake_last_name")
    contract = Contract.model_validate(
        {
            "dataset": "covid",
            "privacy_unit": "subject_id",
            "max_rows_per_unit": 20,  # no subject has more rows: truncation keeps every row
            "max_rows_per_file": 20000,
            "budget": {"epsilon_cap": 100, "delta": 1e-6, "epsilon_per_release": 2.0},
            "columns": {
                "subject_id": {"role": "identifier", "action": "pseudonymize"},
                "result": {"role": "dimension", "keys": ["negative", "positive", "invalid"]},
                "ct_result": {"role": "measure", "type": "float", "bounds": [0, 45]},
                "rec_ver_tat": {"role": "measure", "type": "float", "bounds": [0, 250]},
            },
            "analyses": [
                {"kind": "summary"},
                {"kind": "comparison", "measure": "rec_ver_tat", "by": "result"},
            ],
        }
    )
    # the non-private truth of what is released: values clamped to the bounds; sums and
    # means over the values that are there (ct_result has missing values)
    clamped = masked.with_columns(
        pl.col("ct_result").clip(0, 45), pl.col("rec_ver_tat").clip(0, 250)
    )
    truth: dict[tuple[str, str | None, str], float] = {
        ("count", None, ""): clamped.height,
        ("units", None, ""): clamped["subject_id"].n_unique(),
    }
    for m in ("ct_result", "rec_ver_tat"):
        truth[("sum", m, "")] = float(clamped[m].sum())
        truth[("mean", m, "")] = float(clamped[m].mean())  # type: ignore[arg-type]
    for row in (
        clamped.group_by("result")
        .agg(
            pl.len().alias("n"),
            pl.col("rec_ver_tat").count().alias("present"),
            pl.col("rec_ver_tat").sum().alias("s"),
        )
        .iter_rows(named=True)
    ):
        g = row["result"]
        truth[("count", "rec_ver_tat", g)] = row["n"]
        truth[("sum", "rec_ver_tat", g)] = float(row["s"])
        truth[("mean", "rec_ver_tat", g)] = row["s"] / row["present"]
    hits = _coverage(contract, masked, truth)
    _assert_calibrated(hits, ("count", "sum", "mean"))
    assert len(hits["units"]) == REPEATS


@pytest.mark.slow
def test_wage_survey_trend_intervals_are_calibrated(real_datasets: Path) -> None:
    raw = pl.read_csv(Path(real_datasets) / "wage_survey.csv")
    masked = raw.select("year", "wage", "age")
    contract = Contract.model_validate(
        {
            "dataset": "wages",
            "rows_are_people": True,
            "max_rows_per_unit": 1,
            "max_rows_per_file": 5000,
            "budget": {"epsilon_cap": 100, "delta": 1e-6, "epsilon_per_release": 2.0},
            "columns": {
                "year": {"role": "time", "type": "integer", "granularity": "year"},
                "wage": {"role": "measure", "type": "float", "bounds": [0, 350]},
                "age": {"role": "measure", "type": "integer", "bounds": [18, 80]},
            },
            "analyses": [
                {"kind": "summary"},
                {"kind": "trend", "time": "year", "measures": ["wage"]},
            ],
        }
    )
    truth: dict[tuple[str, str | None, str], float] = {("count", None, ""): masked.height}
    for m in ("wage", "age"):
        truth[("sum", m, "")] = float(masked[m].sum())
        truth[("mean", m, "")] = float(masked[m].mean())  # type: ignore[arg-type]
    for row in (
        masked.group_by("year")
        .agg(pl.len().alias("n"), pl.col("wage").mean().alias("m"))
        .iter_rows(named=True)
    ):
        y = str(row["year"])
        truth[("count", None, y)] = row["n"]
        truth[("mean", "wage", y)] = row["m"]
    hits = _coverage(contract, masked, truth)
    _assert_calibrated(hits, ("count", "sum", "mean"))
