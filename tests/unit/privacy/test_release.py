"""The DP engine: calibration, verification by privacy map, cache, loss split, intervals."""

from __future__ import annotations

import math

import polars as pl
import pytest

from privacy.budget import PrivacyLoss
from privacy.contract import Contract
from privacy.dp_intervals import Estimate, difference, ratio
from privacy.errors import ContractError, PipelineError
from privacy.release import (
    UNIT,
    LossPlan,
    MemoryCalibrationCache,
    Noise,
    QuerySpec,
    ReleaseEngine,
    dp_int_sum,
    dp_len,
    fixed_point,
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


@pytest.fixture
def engine() -> ReleaseEngine:
    df = pl.DataFrame(
        {
            "pid": [f"p{i % 40}" for i in range(200)],
            "g": ["a", "b"] * 100,
            "x": [float(i % 11) for i in range(200)],
        }
    )
    xi, bounds, step = fixed_point(pl.col("x"), (0.0, 10.0))
    prepared = prepare_frame(df.lazy(), _contract(), {"g": pl.col("g"), "xi": xi})
    assert UNIT in prepared.schema and "pid" not in prepared.schema
    engine = ReleaseEngine(_contract(), prepared, MemoryCalibrationCache())
    engine.test_bounds = bounds  # type: ignore[attr-defined]
    engine.test_step = step  # type: ignore[attr-defined]
    return engine


def _sum_spec(engine: ReleaseEngine, **kw: object) -> QuerySpec:
    return QuerySpec(
        "s",
        (dp_len(), dp_int_sum("xi", engine.test_bounds, "sum")),  # type: ignore[attr-defined]
        steps=(("sum", engine.test_step),),  # type: ignore[attr-defined]
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
    spec = _sum_spec(engine)
    share = PrivacyLoss(0.5, 0.0)
    result = engine.release(spec, share)
    assert result.loss.fits_within(share)
    assert result.loss.epsilon == pytest.approx(0.5, rel=1e-4)  # tight, not wasteful
    assert set(result.noise) == {"len", "sum"}
    assert result.noise["sum"].scale == pytest.approx(
        result.noise["sum"].raw_scale * engine.test_step
    )  # type: ignore[attr-defined]
    assert result.frame.columns == ["len", "sum"]


def test_cached_scale_is_reused_and_a_bad_one_is_refused(engine: ReleaseEngine) -> None:
    spec = _sum_spec(engine)
    share = PrivacyLoss(0.5, 0.0)
    engine.resolve(spec, share)
    ((key, good),) = engine.cache._values.items()  # type: ignore[attr-defined]
    # a tampered (too small) scale would overspend: the privacy map refuses it, we recalibrate
    engine.cache.put(key, good / 10)
    meas = engine.resolve(spec, share)
    out = meas.map(1)
    assert out <= 0.5 * (1 + 1e-9)
    assert engine.cache.get(key) == pytest.approx(good)


def test_public_keys_give_exactly_the_keys(engine: ReleaseEngine) -> None:
    spec = _sum_spec(engine, by=("g",), keys=pl.DataFrame({"g": ["a", "b", "c"]}))
    result = engine.release(spec, PrivacyLoss(1.0, 0.0))
    assert sorted(result.frame["g"].to_list()) == ["a", "b", "c"]  # "c" has no rows: noise only
    assert result.loss.delta == 0


def test_private_keys_need_delta_and_use_a_threshold(engine: ReleaseEngine) -> None:
    spec = _sum_spec(engine, by=("g",))
    with pytest.raises(ContractError, match="δ > 0"):
        engine.resolve(spec, PrivacyLoss(1.0, 0.0))
    result = engine.release(spec, PrivacyLoss(1.0, 1e-6))
    assert result.threshold is not None and result.threshold > 3
    assert 0 < result.loss.delta <= 1e-6
    assert set(result.frame["g"].to_list()) <= {"a", "b"}


def test_loss_plan_splits_epsilon_over_queries_and_delta_over_thresholded() -> None:
    a = QuerySpec("a", (dp_len(),))
    b = QuerySpec("b", (dp_len(),), by=("g",))
    c = QuerySpec("c", (dp_len(),), by=("g",), keys=pl.DataFrame({"g": ["x"]}))
    plan = LossPlan(PrivacyLoss(1.5, 1e-6), [a, b, c])
    shares = [plan.share(s) for s in (a, b, c)]
    assert sum(s.epsilon for s in shares) == pytest.approx(1.5)
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
    h = math.hypot(10 * math.log(20) / 100, 10 * math.log(20) / 100)
    assert mean.interval() == pytest.approx((10 - h, 10 + h))
    assert ratio(s, Estimate.of(-1.0, None)) is None
    d = difference(mean, mean)
    assert d.value == 0 and d.interval() is not None
    clipped = Estimate.of(-3.0, Noise("Float Laplace", 1.0), clip=(0.0, None))
    assert clipped.clipped == 0.0 and clipped.interval()[0] >= 0.0  # type: ignore[index]
