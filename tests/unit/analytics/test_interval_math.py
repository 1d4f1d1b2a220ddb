"""The interval arithmetic of ``privacy.dp_intervals``, checked against closed forms and
seeded Monte Carlo draws of the same noise (numpy's generator, in the test only: the code
under test draws nothing). Fast: no OpenDP measurement is run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privacy.dp_intervals import (
    Estimate,
    Ratio,
    difference,
    laplace_sum_quantile,
    linear,
    ratio,
    ratio_range,
    simultaneous_pairs,
)
from privacy.release import Noise


def laplace(b: float) -> Noise:
    return Noise("Float Laplace", b)


def test_a_raw_aggregate_has_opendps_accuracy() -> None:
    s = Estimate.of(1000.0, laplace(10.0))
    assert s.interval() == pytest.approx((1000 - 10 * math.log(20), 1000 + 10 * math.log(20)))
    clipped = Estimate.of(-3.0, laplace(1.0), clip=(0.0, None))
    iv = clipped.interval()
    assert clipped.clipped == 0.0 and iv is not None and iv[0] >= 0.0


def test_sums_of_laplace_noise_use_the_exact_quantile() -> None:
    # two equal scales: P(|S| > t) = e^(−t/b)·(1 + t/(2b)), solved here by bisection
    def two_equal(alpha: float) -> float:
        lo, hi = 0.0, 50.0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if math.exp(-mid) * (1 + mid / 2) > alpha else (lo, mid)
        return lo

    for alpha in (0.05, 0.003):
        assert laplace_sum_quantile([2.0, 2.0], alpha) == pytest.approx(2 * two_equal(alpha), rel=2e-3)
    total = linear([(1.0, Estimate.of(1000.0, laplace(10.0))), (5.0, Estimate.of(100.0, laplace(1.0)))])
    assert total.value == pytest.approx(1500.0)
    # the quadrature rule sqrt(10² + 5²)·ln 20 overstated it
    assert total.halfwidth() < math.hypot(10, 5) * math.log(20)
    rng = np.random.default_rng(1)
    scales = [3.0, 1.0, 1.0, 0.4, 0.05]
    draws = sum(rng.laplace(0, b, 400_000) for b in scales)
    for alpha in (0.05, 0.01):
        q = laplace_sum_quantile(scales, alpha)
        assert np.mean(np.abs(draws) > q) == pytest.approx(alpha, rel=0.04)


def test_a_draw_used_twice_counts_once() -> None:
    rows = Estimate.of(1000.0, laplace(5.0))
    present = Estimate.of(700.0, laplace(5.0))
    missing = ratio(linear([(1.0, rows), (-1.0, present)]), rows, (0.0, 1.0))
    assert missing is not None and missing.value == pytest.approx(0.3)
    # error ≈ (0.7·e_rows − e_present)/1000: the rows' two terms net to one
    [(c_rows, _), (c_present, _)] = sorted(missing.noise, key=lambda t: t[0], reverse=True)
    assert c_rows == pytest.approx(0.7 / 1000) and c_present == pytest.approx(-1 / 1000)
    d = difference(missing, missing)
    assert d.value == 0 and d.halfwidth() == pytest.approx(0.0, abs=1e-12)


def test_fieller_interval_is_the_set_it_says() -> None:
    cs, n = Estimate.of(-46_000.0, laplace(13_000.0)), Estimate.of(23.0, laplace(2.2))
    mean = ratio(cs, n, (2000.0, 13_750.0), offset=7900.0)
    assert isinstance(mean, Ratio) and mean.value == pytest.approx(7900 - 46_000 / 23)
    lo, hi = mean.raw_interval()  # type: ignore[misc]
    # on its ends, |cs − ρ·n| equals the exact quantile of |e_cs − ρ·e_n|
    for end in (lo, hi):
        rho = end - 7900.0
        q = laplace_sum_quantile([13_000.0, abs(rho) * 2.2], 0.05)
        assert abs(-46_000.0 - rho * 23.0) == pytest.approx(q, rel=1e-6)
    assert lo < mean.value < hi and mean.value - lo != pytest.approx(hi - mean.value)
    # a count whose own interval includes zero: unbounded, no finite interval
    assert not ratio(cs, Estimate.of(5.0, laplace(2.2))).bounded()  # type: ignore[union-attr]
    assert ratio(cs, Estimate.of(-1.0, None)) is None


def test_fieller_covers_where_the_delta_method_does_not() -> None:
    """A mean of a small group (N = 20) with a noisy count (scale 4) whose noise dominates
    (the mean far from the bounds' midpoint): the delta method's interval (value ± its
    linearized half-width) covers clearly less than 95%, Fieller's at least 95% (a little
    more, as the means withheld, where the count's interval includes zero, are mostly
    ones it would have missed)."""
    rng = np.random.default_rng(7)
    n_true, c_true, b_cs, b_n = 20, -100.0, 20.0, 4.0
    fieller = delta = published = 0
    for _ in range(5000):
        n = Estimate.of(n_true + rng.laplace(0, b_n), laplace(b_n))
        cs = Estimate.of(c_true * n_true + rng.laplace(0, b_cs), laplace(b_cs))
        mean = ratio(cs, n)
        if mean is None or not mean.bounded():
            continue
        published += 1
        lo, hi = mean.raw_interval()  # type: ignore[misc]
        fieller += lo <= c_true <= hi
        h = Estimate(mean.value, mean.terms).halfwidth()
        assert h is not None
        delta += abs(mean.value - c_true) <= h
    assert published > 4000
    assert 0.95 <= fieller / published <= 0.98
    assert delta / published < 0.94


def _families(u: list[float], w: float, means: np.ndarray, errors: np.ndarray) -> tuple[float, float, float]:
    """Coverage of every difference at once, of every ratio at once (those published: a
    ratio whose denominator may reach zero is not), and of both together."""
    diffs = np.ones(errors.shape[1], dtype=bool)
    ratios = np.ones(errors.shape[1], dtype=bool)
    estimates = means[:, None] + errors
    for i in range(len(u)):
        for j in range(len(u)):
            if i == j:
                continue
            if i < j:
                diffs &= np.abs(errors[i] - errors[j]) <= u[i] + u[j]
            truth = means[i] / means[j]
            for k in range(errors.shape[1]):
                rng = ratio_range(float(estimates[i, k]), float(estimates[j, k]), u[i], u[j], w)
                if rng is not None and not rng[0] <= truth <= rng[1]:
                    ratios[k] = False
    return float(diffs.mean()), float(ratios.mean()), float((diffs & ratios).mean())


def test_simultaneous_pairs_cover_95_percent_family_wise() -> None:
    rng = np.random.default_rng(3)
    scales = [3.0, 1.0, 0.5, 0.5, 0.2]  # one noisy group, two equal, one precise
    estimates = [
        Estimate(0.0, ((1.0, laplace(b), 100 + i), (0.2, laplace(b), 200 + i))) for i, b in enumerate(scales)
    ]
    family = simultaneous_pairs(estimates)
    assert family is not None
    u, w = family
    errors = np.stack([rng.laplace(0, b, 300_000) + 0.2 * rng.laplace(0, b, 300_000) for b in scales])
    # the event itself: a common shift within w of 0, every error within u of it
    low = (errors - np.array(u)[:, None]).max(axis=0)
    high = (errors + np.array(u)[:, None]).min(axis=0)
    event = np.maximum(low, -w) <= np.minimum(high, w)
    assert event.mean() == pytest.approx(0.95, abs=0.003)
    # Bonferroni over the 10 pairs, each at its exact 99.5% quantile, covers far more
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    ok = np.ones(errors.shape[1], dtype=bool)
    for i, j in pairs:
        q = laplace_sum_quantile([scales[i], 0.2 * scales[i], scales[j], 0.2 * scales[j]], 0.005)
        ok &= np.abs(errors[i] - errors[j]) <= q
    assert ok.mean() > 0.97


def test_under_zcdp_the_family_holds_95_percent_on_gaussian_laws() -> None:
    """Gaussian errors (zCDP), one of them a sum of two draws: the common-shift event holds
    in 95% of draws, and a sum of Gaussian draws has the normal law's half-width."""
    rng = np.random.default_rng(5)
    sigmas = [4.0, 1.0, 1.0, 0.3]
    estimates = [Estimate.of(0.0, Noise("Float Gaussian", s)) for s in sigmas[:-1]]
    estimates.append(Estimate(0.0, ((1.0, Noise("Float Gaussian", 0.3), 900),
                                    (0.5, Noise("Integer Gaussian", 0.4), 901))))
    family = simultaneous_pairs(estimates)
    assert family is not None
    u, w = family
    sd = [*sigmas[:-1], math.hypot(0.3, 0.5 * 0.4)]
    errors = np.stack([rng.normal(0, s, 400_000) for s in sd])
    low = (errors - np.array(u)[:, None]).max(axis=0)
    high = (errors + np.array(u)[:, None]).min(axis=0)
    assert (np.maximum(low, -w) <= np.minimum(high, w)).mean() == pytest.approx(0.95, abs=0.003)
    assert estimates[-1].halfwidth() == pytest.approx(1.959964 * sd[-1], rel=1e-5)


def test_a_family_of_fewer_than_two_estimates_needs_no_multiplier() -> None:
    for noise in (laplace(1.0), Noise("Float Gaussian", 1.0)):
        assert simultaneous_pairs([]) == ([], 0.0)
        assert simultaneous_pairs([Estimate.of(3.0, noise)]) == ([0.0], 0.0)


def test_differences_and_ratios_cover_together() -> None:
    """Means 20…50 with errors of very different sizes: every difference and every ratio
    covers at once in about 95% of draws (at least 95%: the event is inside)."""
    rng = np.random.default_rng(5)
    means = np.array([20.0, 30.0, 50.0, 35.0])
    scales = [2.0, 1.0, 0.3, 0.6]
    estimates = [
        Estimate(float(m), ((1.0, laplace(b), 300 + i),))
        for i, (m, b) in enumerate(zip(means, scales, strict=True))
    ]
    family = simultaneous_pairs(estimates)
    assert family is not None
    u, w = family
    errors = np.stack([rng.laplace(0, b, 2000) for b in scales])
    diffs, ratios, both = _families(u, w, means, errors)
    assert 0.94 <= both <= 0.975 and diffs >= both and ratios >= both
    # two groups: the difference's interval is a little wider than its own exact 95%
    # interval (the price of covering the ratio with it, through the bound on the shift)
    two = simultaneous_pairs(estimates[:2])
    assert two is not None
    alone = laplace_sum_quantile([2.0, 1.0], 0.05)
    assert alone < sum(two[0]) < 1.15 * alone
    assert ratio_range(10.0, 1.0, 0.5, 1.0, 0.1) is None  # the denominator may reach 0
