"""The DP engine: calibration, verification by privacy map, cache, loss split, intervals."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest

from privacy.budget import PrivacyLoss
from privacy.contract import MAX_PERIODS, Column, Contract, period_index
from privacy.dp_intervals import Estimate, difference, laplace_sum_quantile, linear, ratio
from privacy.errors import ContractError, PipelineError
from privacy.release import (
    UNIT,
    LossPlan,
    MemoryCalibrationCache,
    Noise,
    QuerySpec,
    ReleaseEngine,
    count_agg,
    fixed_point,
    int_sum_agg,
    prepare_frame,
)


def _contract(delta: float = 1e-6) -> Contract:
    return Contract.model_validate(
        {
            "dataset": "t",
            "privacy_unit": "pid",
            "max_rows_per_unit": 3,
            "max_rows_per_file": 1000,
            "budget": {"epsilon_cap": 10, "delta": delta, "epsilon_per_release": 1.0},
            "columns": {
                "pid": {"role": "identifier", "action": "pseudonymize"},
                "g": {"role": "dimension", "keys": ["a", "b"]},
                "x": {"role": "measure", "type": "float", "bounds": [0, 10]},
            },
        }
    )


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "pid": [f"p{i % 40}" for i in range(200)],
            "g": ["a", "b"] * 100,
            "x": [float(i % 11) for i in range(200)],
        }
    )


XI, XI_BOUNDS, XI_STEP = fixed_point(pl.col("x"), (0.0, 10.0))


def _engine(spill_rows: int | None = None) -> ReleaseEngine:
    prepared = prepare_frame(
        _frame().lazy(), _contract(), {"g": pl.col("g"), "xi": XI}, spill_rows=spill_rows
    )
    assert UNIT in prepared.schema and "pid" not in prepared.schema
    return ReleaseEngine(_contract(), prepared, MemoryCalibrationCache())


@pytest.fixture
def engine() -> ReleaseEngine:
    return _engine()


def _sum_spec(weights: tuple[float, float] = (1.0, 1.0), **kw: object) -> QuerySpec:
    return QuerySpec(
        "s",
        (
            count_agg("len", weights[0]),
            int_sum_agg("xi", XI_BOUNDS, "sum", XI_STEP, weights[1]),
        ),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("eps", [-1.0, 0.0, math.nan, math.inf, -math.inf])
def test_epsilon_must_be_finite_and_positive(eps: float) -> None:
    with pytest.raises(PipelineError):
        PrivacyLoss(eps, 1e-6)


@pytest.mark.parametrize("delta", [-1e-9, 1.0, math.nan, math.inf])
def test_delta_must_be_finite_and_in_range(delta: float) -> None:
    with pytest.raises(PipelineError):
        PrivacyLoss(1.0, delta)


def test_calibrated_measurement_spends_its_share_and_no_more(engine: ReleaseEngine) -> None:
    spec = _sum_spec()
    share = PrivacyLoss(0.5, 0.0)
    result = engine.release(spec, share)
    assert result.loss.fits_within(share)
    assert result.loss.epsilon == pytest.approx(0.5, rel=1e-4)  # tight, not wasteful
    assert set(result.noise) == {"len", "sum"}
    assert result.noise["sum"].scale == pytest.approx(result.noise["sum"].raw_scale * XI_STEP)
    assert result.frame.columns == ["len", "sum"]
    assert sum(result.epsilon_of.values()) == pytest.approx(result.loss.epsilon)


def test_weights_split_epsilon_inside_one_measurement(engine: ReleaseEngine) -> None:
    # the row count gets 3x the ε of the sum: its noise scale (k rows / ε_i) shrinks to match
    result = engine.release(_sum_spec((3.0, 1.0)), PrivacyLoss(1.0, 0.0))
    assert result.loss.epsilon == pytest.approx(1.0, rel=1e-4)
    assert result.epsilon_of["len"] == pytest.approx(0.75)
    k = 3  # max_rows_per_unit: a person moves the count by at most 3
    assert k / result.noise["len"].raw_scale == pytest.approx(0.75, rel=1e-3)
    assert k * XI_BOUNDS[1] / result.noise["sum"].raw_scale == pytest.approx(0.25, rel=1e-3)


def test_distinct_people_cost_one_contribution(engine: ReleaseEngine) -> None:
    units = QuerySpec("u", (count_agg("units"),), per_unit=True)
    rows = QuerySpec("r", (count_agg("len"),))
    share = PrivacyLoss(0.5, 0.0)
    u = engine.release(units, share)
    r = engine.release(rows, share)
    # same ε: one row per person has sensitivity 1, rows per person sensitivity k = 3
    assert u.noise["units"].raw_scale * share.epsilon == pytest.approx(1.0, rel=1e-3)
    assert r.noise["len"].raw_scale * share.epsilon == pytest.approx(3.0, rel=1e-3)
    assert abs(u.frame["units"][0] - 40) < 40  # 40 people, noise of scale 2


def test_cached_scales_are_reused_and_a_bad_one_is_refused(engine: ReleaseEngine) -> None:
    spec = _sum_spec()
    share = PrivacyLoss(0.5, 0.0)
    engine.resolve(spec, share)
    cache = engine.cache._values  # type: ignore[attr-defined]
    good = dict(cache)
    assert len(good) == 2  # one scale per aggregate
    # a tampered (too small) scale would overspend: the privacy map refuses it, we recalibrate
    assert all(len(k) <= 80 for k in good)  # the store keeps keys to 255 characters
    key = max(good, key=lambda k: good[k])  # the sum's scale (in integer units) is the larger
    engine.cache.put(key, good[key] / 10)
    resolved = engine.resolve(spec, share)
    assert resolved.measurement.map(1) <= 0.5 * (1 + 1e-9)
    assert engine.cache.get(key) == pytest.approx(good[key])


def test_public_keys_give_exactly_the_keys(engine: ReleaseEngine) -> None:
    spec = _sum_spec(by=("g",), keys=pl.DataFrame({"g": ["a", "c"]}))
    result = engine.release(spec, PrivacyLoss(1.0, 0.0))
    # "c" has no rows (noise only); "b" is not a key: its rows are not released
    assert sorted(result.frame["g"].to_list()) == ["a", "c"]
    assert result.loss.delta == 0


def test_private_keys_need_delta_and_use_a_threshold(engine: ReleaseEngine) -> None:
    spec = _sum_spec(by=("g",))
    with pytest.raises(ContractError, match="δ > 0"):
        engine.resolve(spec, PrivacyLoss(1.0, 0.0))
    result = engine.release(spec, PrivacyLoss(1.0, 1e-6))
    assert result.threshold is not None and result.threshold > 3
    assert 0 < result.loss.delta <= 1e-6
    assert set(result.frame["g"].to_list()) <= {"a", "b"}


def test_large_frames_reach_opendp_through_a_temporary_file() -> None:
    engine = _engine(spill_rows=10)
    path = engine.prepared.path
    assert path is not None and path.exists() and engine.prepared.frame is None
    result = engine.release(_sum_spec(), PrivacyLoss(1.0, 0.0))
    assert result.frame.height == 1
    engine.prepared.close()
    assert not path.exists() and not path.parent.exists()


def test_loss_plan_splits_epsilon_by_weight_and_delta_over_thresholded() -> None:
    a = QuerySpec("a", (count_agg(weight=2.0),))
    b = QuerySpec("b", (count_agg(),), by=("g",))
    c = QuerySpec(
        "c",
        (count_agg(weight=0.5), count_agg("n", 0.5)),
        by=("g",),
        keys=pl.DataFrame({"g": ["x"]}),
    )
    plan = LossPlan(PrivacyLoss(2.0, 1e-6), [a, b, c])
    shares = [plan.share(s) for s in (a, b, c)]
    assert [s.epsilon for s in shares] == pytest.approx([1.0, 0.5, 0.5])
    assert [s.delta for s in shares] == [0.0, 1e-6, 0.0]


def test_noise_accuracy_matches_laplace_quantiles() -> None:
    n = Noise("Float Laplace", 2.0)
    assert n.accuracy(0.05) == pytest.approx(2.0 * math.log(20))
    assert Noise("Float Laplace", 2.0, step=0.5).accuracy(0.05) == pytest.approx(math.log(20))
    d = Noise("Integer Laplace", 10.0)
    assert d.accuracy(0.05) == pytest.approx(10 * math.log(20), rel=0.1)
    assert Noise("ExponentialMin", 1.0).accuracy(0.05) is None


def test_fixed_point_rounds_within_half_a_step() -> None:
    expr, (lo, hi), step = fixed_point(pl.col("x"), (-5.0, 20.0))
    assert lo < 0 < hi and step == pytest.approx(20 / 1e9)
    vals = pl.DataFrame({"x": [-7.0, 0.123456789, 19.999, 25.0]}).select(expr)["x"].to_list()
    back = [v * step for v in vals]
    assert back[0] == pytest.approx(-5.0) and back[3] == pytest.approx(20.0)
    assert abs(back[1] - 0.123456789) <= step / 2 + 1e-15


def test_intervals_of_derived_values() -> None:
    s = Estimate.of(1000.0, Noise("Float Laplace", 10.0))
    n = Estimate.of(100.0, Noise("Float Laplace", 1.0))
    assert s.interval() == pytest.approx((1000 - 10 * math.log(20), 1000 + 10 * math.log(20)))
    mean = ratio(s, n, clip=(0.0, 50.0))
    assert mean is not None and mean.value == pytest.approx(10.0)
    iv = mean.interval()
    assert iv is not None and iv[0] < 10 < iv[1]
    for end in iv:  # Fieller: at each end |S − ρ·N| is the exact 95% quantile of |e_S − ρ·e_N|
        q = laplace_sum_quantile([10.0, abs(end) * 1.0], 0.05)
        assert abs(1000 - end * 100) == pytest.approx(q, rel=1e-6)
    assert ratio(s, Estimate.of(-1.0, None)) is None
    d = difference(mean, mean)
    assert d.value == 0 and d.interval() is not None
    clipped = Estimate.of(-3.0, Noise("Float Laplace", 1.0), clip=(0.0, None))
    assert clipped.clipped == 0.0 and clipped.interval()[0] >= 0.0  # type: ignore[index]
    total = linear([(1.0, s), (5.0, n)])
    assert total.value == pytest.approx(1500.0)
    # the exact quantile of the sum of two Laplace noises (the quadrature rule overstated it)
    assert total.halfwidth() == pytest.approx(laplace_sum_quantile([10.0, 5.0], 0.05))
    assert total.halfwidth() < math.hypot(10, 5) * math.log(20)


# --------------------------------------------------------------------------- public periods


def _time(**kw: object) -> dict[str, object]:
    return {"role": "time", "type": "date", "granularity": "month", **kw}


def test_period_range_is_validated() -> None:
    ok = Column.model_validate(_time(periods={"start": "2025-01-01", "end": "2026-12-31"}))
    assert ok.periods is not None and ok.periods.start == date(2025, 1, 1)
    years = Column.model_validate(
        {
            "role": "time",
            "type": "integer",
            "granularity": "year",
            "periods": {"start": 2000, "end": 2024},
        }
    )
    assert years.periods is not None and years.periods.end == 2024
    bad = [
        _time(periods={"start": "2026-01-01", "end": "2025-01-01"}),  # reversed
        _time(periods={"start": "2025-01-01", "end": "2025-01-01"}),  # empty
        _time(granularity="day", periods={"start": "2020-01-01", "end": "2026-01-01"}),  # > 400
        _time(periods={"start": 2000, "end": 2024}),  # integers on a date column
        {"role": "dimension", "periods": {"start": "2025-01-01", "end": "2025-02-01"}},
    ]
    for spec in bad:
        with pytest.raises(ValueError, match="periods"):
            Column.model_validate(spec)
    assert MAX_PERIODS == 400


def test_period_index_numbers_consecutive_periods() -> None:
    from privacy.contract import Granularity as G

    assert period_index(date(2025, 12, 31), G.MONTH) + 1 == period_index(date(2026, 1, 1), G.MONTH)
    assert period_index(date(2025, 3, 31), G.QUARTER) + 1 == period_index(
        date(2025, 4, 1), G.QUARTER
    )
    monday, sunday = date(2025, 1, 6), date(2025, 1, 12)
    assert period_index(monday, G.WEEK) == period_index(sunday, G.WEEK)
    assert period_index(sunday, G.WEEK) + 1 == period_index(date(2025, 1, 13), G.WEEK)
    assert period_index(2024, G.YEAR) == 2024
