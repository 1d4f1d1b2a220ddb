"""The employee example releases all six analysis kinds with honest insights."""

from __future__ import annotations

import hashlib
import random
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from analytics.analyses import QUALITY_SHARE, plan_analyses, release_analyses
from privacy.budget import PrivacyLoss
from privacy.contract import Contract, TrendAnalysis, load_contract
from privacy.errors import ContractError, InputRejected, PipelineError
from privacy.release import MemoryCalibrationCache
from privacy.results import Release, ReleaseSet
from tests.unit.contracts import contract_of

ROOT = Path(__file__).resolve().parents[3]



def _analyses(rs: ReleaseSet) -> list[Release]:
    """The releases of the contract's analyses (without the quality disclosures)."""
    return [r for r in rs.releases if r.analysis != "quality"]

def employee_frame(n_employees: int, seed: int = 7, atlas_boost: float = 0.0) -> pl.DataFrame:
    """A masked employee frame: pseudonymized id, several projects per employee."""
    contract = load_contract(ROOT / "contracts" / "employees.yaml")
    teams = contract.columns["team"].keys
    assert teams is not None
    rng = random.Random(seed)
    rows = []
    for e in range(n_employees):
        team = teams[e % len(teams)]
        pid = hashlib.sha256(f"secret|employee-{e}".encode()).hexdigest()
        for _ in range(rng.randint(1, 10)):
            month = rng.randint(1, 6)
            rows.append(
                {
                    "employee_id": pid,
                    "team": team,
                    "project_completion_days": min(rng.gammavariate(3, 4) + month, 60.0),
                    "efficiency": min(
                        max(rng.gauss(1.0, 0.2) + (atlas_boost if team == "Atlas" else 0), 0), 2
                    ),
                    "finish_date": date(2025, month, rng.randint(1, 28)),
                }
            )
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def employees() -> Contract:
    return load_contract(ROOT / "contracts" / "employees.yaml")


@pytest.fixture(scope="module")
def big_frame() -> pl.DataFrame:
    return employee_frame(6000, atlas_boost=0.5)


def test_employee_example_publishes_all_six_kinds(
    employees: Contract, big_frame: pl.DataFrame
) -> None:
    loss = PrivacyLoss(employees.budget.epsilon_per_release, employees.budget.delta)
    rs = release_analyses(big_frame.lazy(), employees, loss, cache=MemoryCalibrationCache())
    kinds = {r.analysis for r in rs.releases}
    assert kinds == {
        "summary", "distribution", "comparison", "trend", "correlation", "forecast", "quality"
    }
    # accounting: the set's loss is what the measurements report, within the per-file budget
    assert rs.loss.fits_within(loss)
    assert rs.loss.epsilon == pytest.approx(loss.epsilon, rel=1e-3)
    assert rs.loss.delta == 0  # every group key is public: teams, bins, months
    paid = [r.loss for r in rs.releases if r.loss is not None]
    assert sum(p.epsilon for p in paid) == pytest.approx(rs.loss.epsilon)
    # the quality disclosures cost QUALITY_SHARE of ε; each paid analysis gets an equal share
    # of the rest, whatever aggregates it shares with others
    [quality] = [r.loss for r in rs.releases if r.analysis == "quality"]
    assert quality is not None and quality.epsilon == pytest.approx(QUALITY_SHARE * loss.epsilon)
    analyses = [r.loss for r in rs.releases if r.loss is not None and r.analysis != "quality"]
    each = (1 - QUALITY_SHARE) * loss.epsilon / len(analyses)
    assert [p.epsilon for p in analyses if p] == pytest.approx([each] * len(analyses))
    for r in rs.releases:
        # a correlation the noise swamps is withheld: its insight says so instead
        assert r.values or "cannot be estimated" in r.insights[0], r.name
        assert r.insights or r.analysis == "quality", r.name  # quality speaks when it matters
        if r.analysis == "forecast":
            assert r.loss is None and r.mechanism == "post-processing"
        else:
            assert r.loss is not None and r.loss.epsilon > 0
    by_kind = {r.analysis: r for r in rs.releases}
    summary = by_kind["summary"]
    metrics = {(v.metric, v.column) for v in summary.values}
    assert {
        ("count", None),
        ("units", None),
        ("mean", "efficiency"),
        ("sum", "efficiency"),
    } <= metrics
    for v in summary.values:
        assert v.lower is not None and v.upper is not None and v.lower <= v.value <= v.upper
        assert v.scale is not None and v.scale > 0
    mean_eff = next(v for v in summary.values if v.metric == "mean" and v.column == "efficiency")
    assert 0 <= mean_eff.lower <= mean_eff.upper <= 2  # type: ignore[operator]
    assert any(
        s.startswith("Average project completion days:") and "95% CI" in s for s in summary.insights
    )

    dist = by_kind["distribution"]
    bins = [v for v in dist.values if v.metric == "histogram"]
    assert [v.group["bin"] for v in bins][:2] == ["[0, 5)", "[5, 10)"]
    quantiles = [v for v in dist.values if v.metric.startswith("quantile_")]
    assert {v.metric for v in quantiles} == {"quantile_0.25", "quantile_0.5", "quantile_0.75"}
    assert all(0 <= v.value <= 60 for v in quantiles)

    comparisons = [r for r in rs.releases if r.analysis == "comparison"]
    eff = next(r for r in comparisons if r.name == "comparison:efficiency:team")
    groups = {v.group["team"] for v in eff.values if v.metric == "mean"}
    assert groups == {"Atlas", "Borealis", "Cygnus", "Draco"}  # exactly the public keys
    assert any(v.metric == "difference" for v in eff.values)
    assert any(v.metric == "ratio" for v in eff.values)

    trend = by_kind["trend"]
    assert trend.mechanism == "laplace"  # the contract's public months: no threshold
    periods = [v.group["finish_date"] for v in trend.values if v.metric == "count"]
    assert periods == [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)]
    # means only where a month surely has rows: the six with rows (an empty month passes
    # for one with rows in ~2% of releases: the level is 5% over the 24 months)
    means = {v.group["finish_date"] for v in trend.values if v.metric == "mean"}
    assert means >= {f"2025-0{m}" for m in range(1, 7)} and len(means) <= 7
    assert trend.insights[0].startswith("Rows per month went from")
    assert "(2025-01) to" in trend.insights[0]  # the span with rows, not the range's edge

    corr = by_kind["correlation"]
    for r in corr.values:  # none when the variances are too noisy to divide by
        assert r.metric == "pearson_r"
        assert -1 <= r.lower <= r.value <= r.upper <= 1  # type: ignore[operator]

    fc = by_kind["forecast"]
    points = [v for v in fc.values if v.metric == "forecast"]
    months = [p.group["finish_date"] for p in points]
    assert len(months) == 3 and months[0] >= "2025-07"  # after the last month with rows
    assert all(p.lower is not None and p.lower <= p.value <= p.upper for p in points)  # type: ignore[operator]
    assert "linear trend" in fc.insights[0]


def test_a_real_team_difference_is_reported_with_its_interval(
    employees: Contract, big_frame: pl.DataFrame
) -> None:
    # Atlas's efficiency is 50% higher in the data: the insight names it (most of the time)
    only = employees.model_copy(update={"analyses": [employees.analyses[2]]})
    plan = plan_analyses(big_frame.lazy(), only, PrivacyLoss(1 / 7, 1e-6))  # the same ε share
    found = 0
    for _ in range(20):
        (eff,) = _analyses(plan.run())
        assert eff.name == "comparison:efficiency:team"
        found += any(
            s.startswith("Atlas's average efficiency is") and "% higher" in s for s in eff.insights
        )
    assert found >= 15


#: the budget of the contracts built here: ε 1 and δ 10⁻⁶ a release, ε 100 in all
BUDGET = {"epsilon_cap": 100, "delta": 1e-6, "epsilon_per_release": 1.0}
EFFICIENCY = {"role": "measure", "type": "float", "bounds": [0, 2]}


def two_team_contract() -> Contract:
    return contract_of(
        "teams",
        {"team": {"role": "dimension", "keys": ["Atlas", "Borealis"]}, "efficiency": EFFICIENCY},
        [{"kind": "comparison", "measure": "efficiency", "by": "team"}],
        unit="employee_id", max_rows_per_unit=10, max_rows_per_file=100_000, budget=BUDGET,
    )


def test_no_clear_difference_when_the_true_difference_is_zero() -> None:
    # identical efficiency distributions in both teams: the true difference is exactly 0
    rows = []
    for e in range(600):
        for p in range(5):
            rows.append(
                {
                    "employee_id": hashlib.sha256(f"e{e}".encode()).hexdigest(),
                    "team": "Atlas" if e % 2 == 0 else "Borealis",
                    "efficiency": 0.5 + 0.25 * ((e // 2 + p) % 5),
                }
            )
    df = pl.DataFrame(rows)
    means = df.group_by("team").agg(pl.col("efficiency").mean())["efficiency"].to_list()
    assert means[0] == pytest.approx(means[1])
    contract = two_team_contract()
    plan = plan_analyses(df.lazy(), contract, PrivacyLoss(1.0, 1e-6))
    repeats = 300
    no_clear = 0
    for _ in range(repeats):
        (release,) = _analyses(plan.run())
        text = " ".join(release.insights)
        no_clear += text.startswith("No clear difference")
        assert "higher than" not in text or not text.startswith("No clear")
    assert no_clear / repeats >= 0.95


def test_unknown_keys_need_delta(big_frame: pl.DataFrame) -> None:
    contract = contract_of(
        "teams",
        {"team": {"role": "dimension"}, "efficiency": EFFICIENCY},  # team: no public keys
        [{"kind": "comparison", "measure": "efficiency", "by": "team"}],
        unit="employee_id", max_rows_per_unit=10,
        budget={"epsilon_cap": 10, "delta": 0.0, "epsilon_per_release": 1.0},
    )
    with pytest.raises(ContractError, match="δ > 0"):
        release_analyses(big_frame.lazy(), contract, PrivacyLoss(1.0, 0.0))
    # with δ > 0 the private keys are released through OpenDP's threshold only
    rs = release_analyses(big_frame.lazy(), contract, PrivacyLoss(1.0, 1e-6))
    (release,) = _analyses(rs)
    assert release.mechanism == "laplace+threshold"
    assert 0 < rs.loss.delta <= 1e-6
    released = {v.group["team"] for v in release.values if v.metric == "count"}
    assert released <= {"Atlas", "Borealis", "Cygnus", "Draco"}


def test_file_over_max_rows_is_refused_without_values(employees: Contract) -> None:
    small = employees.model_copy(update={"max_rows_per_file": 100})
    df = employee_frame(200)
    with pytest.raises(InputRejected) as err:
        release_analyses(df.lazy(), small, PrivacyLoss(1.0, 1e-6))
    assert "max_rows_per_file=100" in str(err.value)
    assert "Atlas" not in str(err.value)
    assert isinstance(err.value, PipelineError)


def test_missing_column_is_a_counts_only_error(employees: Contract) -> None:
    df = employee_frame(50).drop("efficiency")
    with pytest.raises(InputRejected):
        release_analyses(df.lazy(), employees, PrivacyLoss(1.0, 1e-6))


def test_warm_release_reuses_cached_scales(employees: Contract) -> None:
    df = employee_frame(300)
    cache = MemoryCalibrationCache()
    loss = PrivacyLoss(1.0, 1e-6)
    first = release_analyses(df.lazy(), employees, loss, cache=cache)
    assert len(cache) > 0
    entries = dict(cache._values)
    second = release_analyses(employee_frame(400, seed=9).lazy(), employees, loss, cache=cache)
    assert dict(cache._values) == entries  # nothing recalibrated
    scales = lambda rs: [v.scale for r in rs.releases for v in r.values if v.metric == "count"][:1]  # noqa: E731
    assert scales(first) == scales(second)  # same contract: same noise, whatever the rows
    assert second.loss.fits_within(loss)


# --------------------------------------------------------------------------- public periods


def _masked_demo(rows: int, **kw: object) -> pl.LazyFrame:
    from flows.demo import employee_frame as demo_frame
    from privacy.masking import mask

    contract = load_contract(ROOT / "contracts" / "employees.yaml")
    raw = demo_frame(employees=max(rows // 6, 50), rows=rows, **kw)  # type: ignore[arg-type]
    return mask(raw.lazy(), contract, b"test-pseudonym-key")


def test_trend_on_a_realistic_file_releases_every_public_month(employees: Contract) -> None:
    # 1,000 rows over 18 months: far below OpenDP's threshold per month, yet every month of
    # the contract's public range is released (with its noise), and no δ is spent
    loss = PrivacyLoss(employees.budget.epsilon_per_release, employees.budget.release_delta)
    rs = release_analyses(_masked_demo(1000), employees, loss)
    (trend,) = [r for r in rs.releases if r.analysis == "trend"]
    months = [v.group["finish_date"] for v in trend.values if v.metric == "count"]
    assert months == [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)]
    assert all(v.lower is not None and v.lower <= v.value <= v.upper for v in trend.values)  # type: ignore[operator]
    assert rs.loss.delta == 0 and trend.mechanism == "laplace"


def test_rows_outside_the_period_range_are_not_released(
    employees: Contract, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(3)
    dates = [date(2025, 3, 1 + i % 28) for i in range(3000)]
    dates += [date(2024, 12, 1 + i % 28) for i in range(1500)]  # before the range
    dates += [date(2027, 1, 1 + i % 28) for i in range(1500)]  # after it
    df = pl.DataFrame(
        {
            "employee_id": [f"p{i // 4}" for i in range(len(dates))],
            "team": [rng.choice(["Atlas", "Draco"]) for _ in dates],
            "project_completion_days": [10.0] * len(dates),
            "efficiency": [1.0] * len(dates),
            "finish_date": dates,
        }
    )
    only = employees.model_copy(update={"analyses": [TrendAnalysis(time="finish_date")]})
    with caplog.at_level("INFO", logger="analytics.analyses.plan"):
        plan = plan_analyses(df.lazy(), only, PrivacyLoss(1.0, 0.0))
    assert "3000 rows have no finish_date in the contract's periods range" in caplog.text
    for _ in range(5):
        (trend,) = _analyses(plan.run())
        counts = {v.group["finish_date"]: v for v in trend.values if v.metric == "count"}
        assert "2024-12" not in counts and "2027-01" not in counts
        march = counts["2025-03"]
        assert march.lower <= 3000 <= march.upper or abs(march.value - 3000) < 500  # type: ignore[operator]
        assert counts["2025-02"].value < 500 and counts["2026-12"].value < 500


def test_time_without_a_range_falls_back_to_the_threshold(
    employees: Contract, big_frame: pl.DataFrame
) -> None:
    col = employees.columns["finish_date"].model_copy(update={"periods": None})
    private = employees.model_copy(
        update={
            "columns": {**employees.columns, "finish_date": col},
            "analyses": [TrendAnalysis(time="finish_date")],
        }
    )
    rs = release_analyses(big_frame.lazy(), private, PrivacyLoss(1.0, 1e-6))
    (trend,) = _analyses(rs)
    assert trend.mechanism == "laplace+threshold" and 0 < rs.loss.delta <= 1e-6
    months = {v.group["finish_date"] for v in trend.values if v.metric == "count"}
    assert months <= {f"2025-0{m}" for m in range(1, 7)} and len(months) >= 3
    with pytest.raises(ContractError, match="δ > 0"):
        release_analyses(big_frame.lazy(), private, PrivacyLoss(1.0, 0.0))


# --------------------------------------------------------------------------- correlation


def _correlated_frame(rows: int, seed: int = 11) -> pl.DataFrame:
    import numpy as np  # test data only: release noise comes from OpenDP

    rng = np.random.default_rng(seed)
    days = rng.uniform(5, 55, rows)
    eff = np.clip(1.6 - 0.02 * days + rng.normal(0, 0.35, rows), 0, 2)
    return pl.DataFrame(
        {
            "employee_id": [f"p{i // 5}" for i in range(rows)],
            "project_completion_days": days,
            "efficiency": eff,
            "unrelated": rng.uniform(0, 1, rows),
        }
    )


def test_correlation_is_near_the_truth_on_a_large_file() -> None:
    df = _correlated_frame(200_000)
    contract = contract_of(
        "corr",
        {
            "project_completion_days": {"role": "measure", "type": "float", "bounds": [0, 60]},
            "efficiency": EFFICIENCY,
            "unrelated": {"role": "measure", "type": "float", "bounds": [0, 1]},
        },
        [
            {"kind": "summary"},
            {"kind": "correlation", "measures": ["project_completion_days", "efficiency", "unrelated"]},
        ],
        unit="employee_id", max_rows_per_unit=12, max_rows_per_file=1_000_000, budget=BUDGET,
    )
    truth = {
        ("efficiency",): df.select(pl.corr("project_completion_days", "efficiency")).item(),
        ("unrelated",): df.select(pl.corr("project_completion_days", "unrelated")).item(),
    }
    assert truth[("efficiency",)] < -0.5 and abs(truth[("unrelated",)]) < 0.02
    plan = plan_analyses(df.lazy(), contract, PrivacyLoss(1.0, 0.0))
    assert plan.engine.prepared.path is not None  # a large file goes through a temp file
    repeats, near, covered, unclear = 30, 0, 0, 0
    for _ in range(repeats):
        (corr,) = [r for r in plan.run().releases if r.analysis == "correlation"]
        r = {
            (v.group["with"],): v
            for v in corr.values
            if v.metric == "pearson_r" and v.column == "project_completion_days"
        }
        strong, none = r[("efficiency",)], r[("unrelated",)]
        near += abs(strong.value - truth[("efficiency",)]) < 0.1
        covered += strong.lower <= truth[("efficiency",)] <= strong.upper  # type: ignore[operator]
        unclear += none.lower <= 0 <= none.upper  # type: ignore[operator]
        assert any("clear strong negative correlation" in s for s in corr.insights)
    plan.close()
    # 95% intervals: about 28 of 30; 24 keeps a false alarm below 1%
    assert near >= 27 and covered >= 24 and unclear >= 24
    assert not plan.engine.prepared.path.exists()


def test_correlation_on_a_small_file_does_not_claim_a_value(employees: Contract) -> None:
    loss = PrivacyLoss(employees.budget.epsilon_per_release, employees.budget.release_delta)
    rs = release_analyses(_masked_demo(2000), employees, loss)
    (corr,) = [r for r in rs.releases if r.analysis == "correlation"]
    text = " ".join(corr.insights)
    assert "clear" not in text.replace("No clear", "") and "r = 1.00" not in text
    assert text.startswith(("The correlation between", "No clear correlation"))
