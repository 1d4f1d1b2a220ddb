"""The planner predicts, from public parameters only, the interval half-widths the engine
then releases on real-looking files of that shape (ratios, never exact noisy values)."""

from __future__ import annotations

import hashlib
import random
import statistics
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from analytics.analyses import plan_analyses
from analytics.planner import (
    PlanError,
    Predicted,
    Target,
    assume,
    predict,
    solve,
    synthetic_frame,
)
from privacy.contract import Contract, load_contract
from privacy.results import ReleaseSet
from tests.unit.contracts import contract_of

ROOT = Path(__file__).resolve().parents[3]
BUDGET = {"epsilon_cap": 10.0, "delta": 1e-6, "epsilon_per_release": 1.0}
#: engine runs on the "actual" files: the median released half-width over them
REPEATS = 20


@pytest.fixture(scope="module")
def employees() -> Contract:
    return load_contract(ROOT / "contracts" / "employees.yaml")


def _one(values: list[Predicted], analysis: str, metric: str, column: str | None = None) -> Predicted:
    [v] = [v for v in values if (v.analysis, v.metric, v.column) == (analysis, metric, column)]
    return v


def _released(sets: list[ReleaseSet], analysis: str, metric: str, column: str | None = None,
              group: dict[str, str] | None = None) -> float:  # fmt: skip
    """The median released half-width of one value over ``sets``."""
    widths = [
        (v.upper - v.lower) / 2
        for rs in sets for r in rs.releases if r.name == analysis
        for v in r.values
        if (v.metric, v.column) == (metric, column) and v.group == (group or {})
        and v.upper is not None and v.lower is not None
    ]  # fmt: skip
    assert len(widths) >= len(sets) // 2, (analysis, metric, column, group)
    return statistics.median(widths)


def _actual(frame: pl.DataFrame, contract: Contract, repeats: int = REPEATS) -> list[ReleaseSet]:
    plan = plan_analyses(frame.lazy(), contract, contract.budget.release_loss)
    try:
        return [plan.run() for _ in range(repeats)]
    finally:
        plan.close()


def random_employees(contract: Contract, people: int, rows: int, seed: int = 11) -> pl.DataFrame:
    """A release input of ``people`` employees with ``rows`` projects each: balanced teams
    (shuffled), random skewed completion days, random efficiency, random finish dates."""
    rng = random.Random(seed)
    teams = contract.columns["team"].keys
    assert teams is not None
    team_of = [teams[p % len(teams)] for p in range(people)]
    rng.shuffle(team_of)
    out = []
    for p in range(people):
        pid = "pa1_" + hashlib.sha256(f"key|{p}".encode()).hexdigest()
        for _ in range(rows):
            out.append({
                "employee_id": pid,
                "team": team_of[p],
                "project_completion_days": min(rng.gammavariate(3, 5), 60.0),
                "efficiency": min(max(rng.gauss(1.0, 0.3), 0.0), 2.0),
                "finish_date": date(rng.randint(2025, 2026), rng.randint(1, 12), rng.randint(1, 28)),
            })  # fmt: skip
    return pl.DataFrame(out)


def test_the_plan_matches_what_the_engine_releases_on_a_random_file(employees: Contract) -> None:
    people, rows = 2000, 5
    a = assume(employees, people, rows, {"project_completion_days": 15.0})
    plan = predict(employees, a)
    sets = _actual(random_employees(employees, people, rows), employees)
    team = "comparison:efficiency:team"
    pairs = {
        "count": (_one(plan.values, "summary", "count"), _released(sets, "summary", "count")),
        "mean days": (
            _one(plan.values, "summary", "mean", "project_completion_days"),
            _released(sets, "summary", "mean", "project_completion_days"),
        ),
        "team mean": (
            _one(plan.values, team, "mean", "efficiency"),
            _released(sets, team, "mean", "efficiency", {"team": "Atlas"}),
        ),
    }
    for what, (predicted, actual) in pairs.items():
        assert predicted.half_width is not None
        assert 0.9 <= predicted.half_width / actual <= 1.1, (what, predicted.half_width, actual)
    # the expected values the relative widths rest on come from the assumptions
    assert pairs["count"][0].expected == people * rows
    assert pairs["team mean"][0].expected == 1.0 and pairs["team mean"][0].per == "team"
    days = pairs["mean days"][0]
    assert days.half_width is not None and days.relative == pytest.approx(days.half_width / 15)


def hr_contract(budget: dict[str, object] | None = None) -> Contract:
    return contract_of(
        "hr",
        {
            "Age": {"role": "measure", "type": "integer", "bounds": [18, 65]},
            "MonthlyIncome": {"role": "measure", "type": "integer", "bounds": [1000, 20000]},
            "Department": {"role": "dimension", "keys": ["Human_Resources", "Research_Development", "Sales"]},
        },
        [{"kind": "summary"}, {"kind": "comparison", "measure": "MonthlyIncome", "by": "Department"}],
        budget=budget or BUDGET,  # type: ignore[arg-type]
    )


ZCDP = {"epsilon_cap": 10.0, "delta": 1e-6, "accounting": "zcdp", "rho_per_release": 0.02}


@pytest.mark.parametrize("budget", [BUDGET, ZCDP], ids=["pure", "zcdp"])
def test_the_plan_matches_what_the_engine_releases_on_a_real_dataset(
    real_datasets: Path, budget: dict[str, object]
) -> None:
    contract = hr_contract(budget)
    frame = pl.read_csv(Path(real_datasets) / "hr_attrition.csv").select(
        pl.col("Age").cast(pl.Int64), pl.col("MonthlyIncome").cast(pl.Int64), "Department"
    )
    a = assume(contract, frame.height, expect={"MonthlyIncome": 6500, "Age": 37})
    plan = predict(contract, a)
    sets = _actual(frame, contract)
    for metric, column in (("count", None), ("mean", "MonthlyIncome"), ("mean", "Age")):
        predicted = _one(plan.values, "summary", metric, column).half_width
        actual = _released(sets, "summary", metric, column)
        assert predicted is not None and 0.9 <= predicted / actual <= 1.1, (metric, column)


def test_under_zcdp_the_noise_scales_as_one_over_the_root_of_rho() -> None:
    contract = contract_of(
        "small", {"hours": {"role": "measure", "type": "float", "bounds": [0, 80]}},
        [{"kind": "summary"}], budget={**ZCDP, "rho_per_release": 0.01},
    )
    a = assume(contract, 3000, runs=1)
    one, four = predict(contract, a, 0.01), predict(contract, a, 0.04)
    m1, m4 = (_one(p.values, "summary", "mean", "hours") for p in (one, four))
    assert m1.half_width == pytest.approx(2 * m4.half_width, rel=0.1)  # type: ignore[operator]
    assert sum(e for _, e, _ in one.split) == pytest.approx(0.01)  # the split is of ρ
    s = solve(contract, a, Target("summary.mean", 1.0, False))
    assert s.reached and s.releases_allowed is not None and s.releases_allowed >= 1
    row = _target_row(predict(contract, a, s.epsilon), Target("summary.mean", 1.0, False))
    assert row.half_width is not None and row.half_width <= 1.0 * 1.05


def small_contract(**budget: float) -> Contract:
    return contract_of(
        "small",
        {"hours": {"role": "measure", "type": "float", "bounds": [0, 80]}},
        [{"kind": "summary"}],
        budget={**BUDGET, **budget},
    )


def test_a_target_finds_an_epsilon_that_reaches_it_and_a_smaller_one_that_does_not() -> None:
    contract = small_contract()
    a = assume(contract, 3000)
    for target in (Target("summary.count", 1.0, True), Target("summary", 4.0, True),
                   Target("summary.mean", 1.5, False)):  # fmt: skip
        s = solve(contract, a, target)
        assert s.reached and s.below is not None and s.below < s.epsilon <= 10
        want = target.value / 100 if target.relative else target.value
        assert s.half_width <= want < s.below_half_width  # type: ignore[operator]
        assert s.releases_allowed == int(10 / s.epsilon + 1e-9)

        def worst(eps: float, tgt: Target = target) -> float:
            row = _target_row(predict(contract, a, eps), tgt)
            return row.relative if tgt.relative else row.half_width  # type: ignore[return-value]

        # re-planned apart from the search (the mean's medians vary a little: 5% slack)
        slack = 1.0 if target.analysis.endswith("count") else 1.05
        assert worst(s.epsilon) <= want * slack
        assert worst(s.epsilon / 1.1) > want / slack


def _target_row(plan: object, target: Target) -> Predicted:
    from analytics.planner import target_rows

    rows = target_rows(plan, target)  # type: ignore[arg-type]
    return max(rows, key=lambda v: (v.relative if target.relative else v.half_width) or 0.0)


def test_an_unreachable_target_reports_the_best_epsilon_tried() -> None:
    contract = small_contract()
    s = solve(contract, assume(contract, 100), Target("summary.count", 0.01, True))
    assert not s.reached and s.epsilon == 10 and s.half_width > 0.0001
    with pytest.raises(PlanError, match="no such analysis"):
        solve(contract, assume(contract, 100), Target("trend", 5, True))


def test_the_counts_scale_as_one_over_epsilon_and_the_budget_lines() -> None:
    contract = small_contract(epsilon_cap=12, epsilon_per_release=2)
    a = assume(contract, 1000, runs=1)
    one, two = predict(contract, a, 1.0), predict(contract, a, 2.0)
    c1, c2 = _one(one.values, "summary", "count"), _one(two.values, "summary", "count")
    # (integer Laplace: its quantiles round to whole counts)
    assert c1.half_width == pytest.approx(2 * c2.half_width, rel=0.1)  # type: ignore[operator]
    assert predict(contract, a).releases_allowed == 6
    assert one.releases_allowed == 12 and sum(e for _, e, _ in one.split) == pytest.approx(1.0)
    assert {n for n, _, _ in one.split} == {"summary", "quality"}


def test_the_synthetic_file_has_the_public_shape(employees: Contract) -> None:
    a = assume(employees, 40)
    frame = synthetic_frame(employees, a)
    assert frame.height == 40 * 8 and frame["employee_id"].n_unique() == 40
    assert set(frame.columns) == {"employee_id", "team", "project_completion_days",
                                  "efficiency", "finish_date"}  # fmt: skip
    assert frame["team"].value_counts()["count"].to_list() == [80] * 4
    months = frame["finish_date"].dt.truncate("1mo").value_counts()["count"].to_list()
    assert len(months) == 24 and min(months) >= 13 and max(months) <= 14  # 320 rows / 24
    assert frame["project_completion_days"].unique().to_list() == [30.0]
    # an integer measure averages its expected value exactly, with integer values
    ints = contract_of(
        "ints", {"visits": {"role": "measure", "type": "integer", "bounds": [0, 10]}},
        [{"kind": "summary"}], budget=BUDGET,
    )  # fmt: skip
    f = synthetic_frame(ints, assume(ints, 1000, expect={"visits": 2.5}))
    assert f["visits"].dtype == pl.Int64 and f["visits"].mean() == pytest.approx(2.5)


def test_what_the_planner_cannot_predict_is_marked() -> None:
    contract = contract_of(
        "marks",
        {
            "pay": {"role": "measure", "type": "float", "bounds": {"auto": True, "within": [0, 1e5]}},
            "tips": {"role": "measure", "type": "float", "bounds": "auto"},
            "site": {"role": "dimension"},  # keys are private
        },
        [{"kind": "summary"}, {"kind": "comparison", "measure": "pay", "by": "site"},
         {"kind": "distribution", "measure": "pay", "bins": [0, 1e4, 1e5]}],
        budget=BUDGET,
    )  # fmt: skip
    plan = predict(contract, assume(contract, 2000, runs=2))
    assert _one(plan.values, "summary", "mean", "pay").half_width is not None  # within
    tips = _one(plan.values, "summary", "mean", "tips")
    assert tips.half_width is None and "within" in (tips.note or "")
    site = _one(plan.values, "comparison:pay:site", "mean", "pay")
    assert site.half_width is None and "private" in (site.note or "")
    quantiles = _one(plan.values, "distribution:pay", "quantiles", "pay")
    assert quantiles.half_width is None and "spread" in (quantiles.note or "")
    assert plan.split[0][0] == "bounds (auto)" and plan.split[0][1] == pytest.approx(0.1)
    assert any("within limits" in n for n in plan.notes)


def test_bad_assumptions_are_refused_with_the_reason(employees: Contract) -> None:
    with pytest.raises(PlanError, match="not a measure"):
        assume(employees, 10, expect={"team": 1})
    with pytest.raises(PlanError, match=r"outside its bounds \[0, 2\]"):
        assume(employees, 10, expect={"efficiency": 3})
    with pytest.raises(PlanError, match="rows_are_people"):
        assume(small_contract(), 10, rows_per_person=2)
    with pytest.raises(PlanError, match="max_rows_per_file"):
        assume(employees.model_copy(update={"max_rows_per_file": 100}), 20)
    # more rows than the per-person bound: planned, with a note (the extra rows are left out)
    a = assume(employees, 100, rows_per_person=10, runs=1)
    assert a.rows_kept(employees) == 800
    assert "extra rows out at random" in predict(employees, a).notes[0]
