"""Exact (1-α) quantiles of |Σ cᵢZᵢ| for independent Laplace noise Zᵢ (closed-form tails,
solved by Newton's method) or Gaussian noise (zCDP: a normal law), and the bracketed root
finder the intervals share.

>>> round(laplace_sum_quantile([1.0], 0.05), 6)  # one Laplace: b·ln(1/α)
2.995732
>>> round(laplace_sum_quantile([1.0, 2.0], 0.05), 6)
6.547809
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from statistics import NormalDist

from privacy.release import Noise

#: relative gap below which two scales of a sum are spread apart (docs/architecture.md,
#: "Intervals")
_GAP = 0.02


@lru_cache(maxsize=4096)
def _accuracy(noise: Noise, alpha: float) -> float | None:
    """OpenDP's accuracy of one aggregate (cached: the FFI call costs ~0.2 ms)."""
    if not isinstance(noise.raw_scale, float):  # OpenDP types its arguments by their value
        noise = Noise(noise.distribution, float(noise.raw_scale), noise.step)
    return noise.accuracy(float(alpha))


def _mixture(scales: Sequence[float]) -> tuple[list[float], list[float]]:
    """(b, w): P(|Σ Lᵢ| > t) = Σ wₖ·exp(−t/bₖ) for independent Laplace Lᵢ of ``scales``."""
    b = sorted(s for s in scales if s > 0)
    for _ in range(len(b)):
        changed = False
        i = 0
        while i < len(b):
            j = i
            while j + 1 < len(b) and b[j + 1] < b[j] * (1 + _GAP):
                j += 1
            if j > i:
                m = j - i + 1
                centre = math.exp(sum(math.log(v) for v in b[i : j + 1]) / m)
                spread = [centre * (1 + _GAP) ** (k - (m - 1) / 2) for k in range(m)]
                changed = changed or any(
                    abs(x - y) > 1e-12 * y for x, y in zip(spread, b[i : j + 1], strict=True)
                )
                b[i : j + 1] = spread
            i = j + 1
        if not changed:
            break
    w = []
    for i, bi in enumerate(b):
        p = 1.0
        for j, bj in enumerate(b):
            if j != i:
                p *= bi * bi / (bi * bi - bj * bj)
        w.append(p)
    return b, w


def laplace_sum_quantile(scales: Sequence[float], alpha: float) -> float:
    """The exact (1-α) quantile of |Σ Lᵢ| for independent Laplace Lᵢ of the given scales."""
    live = [s for s in scales if s > 0]
    if len(live) == 2 and abs(live[0] - live[1]) > _GAP * max(live):
        return _two_quantile(max(live), min(live), alpha)
    b, w = _mixture(live)
    if not b:
        return 0.0
    log_a = math.log(1 / alpha)
    if len(b) == 1:
        return b[0] * log_a

    def tail(t: float) -> tuple[float, float]:
        p = dp = 0.0
        for wk, bk in zip(w, b, strict=True):
            e = wk * math.exp(-t / bk)
            p += e
            dp -= e / bk
        return p, dp

    # P(|S| > t) >= P(|L_max| > t) (Anderson) and <= Σ P(|Lᵢ| > bᵢ·t/Σb) (union bound)
    lo, hi = b[-1] * log_a, sum(b) * math.log(len(b) / alpha)
    # start where the slowest exponential alone would give α (the tail's asymptote)
    t = b[-1] * math.log(w[-1] / alpha) if w[-1] > 0 else lo
    t = min(max(t, lo), hi)
    return _solve_tail(tail, t, lo, hi, alpha, 100)



def _two_quantile(a: float, b: float, alpha: float) -> float:
    """``laplace_sum_quantile([a, b], alpha)`` for a > b (1 + 2%): P(|S| > t) =
    (a²·e^(−t/a) − b²·e^(−t/b)) / (a² − b²), solved by Newton's method on its logarithm."""
    wa, wb = a * a / (a * a - b * b), -b * b / (a * a - b * b)

    def tail(t: float) -> tuple[float, float]:
        ea, eb = wa * math.exp(-t / a), wb * math.exp(-t / b)
        return ea + eb, -ea / a - eb / b

    lo, hi = a * math.log(1 / alpha), (a + b) * math.log(2 / alpha)
    t = min(max(a * math.log(wa / alpha), lo), hi)
    return _solve_tail(tail, t, lo, hi, alpha, 50)


def _solve_tail(
    tail: Callable[[float], tuple[float, float]],
    t: float,
    lo: float,
    hi: float,
    alpha: float,
    steps: int,
) -> float:
    """The t in [lo, hi] where the falling tail P(|S| > t) is α, from ``t``: Newton steps on
    log P (``tail`` gives P and its derivative), bisection when a step leaves the bracket."""
    log_alpha = math.log(alpha)
    for _ in range(steps):
        p, dp = tail(t)
        if p > alpha:
            lo = t
        else:
            hi = t
        nt = t - (math.log(p) - log_alpha) * p / dp if p > 0 and dp < 0 else (lo + hi) / 2
        if not lo <= nt <= hi:
            nt = (lo + hi) / 2
        if abs(nt - t) <= 1e-10 * t:
            return nt
        t = nt
    return t


def _quantile(coefs: Sequence[tuple[float, Noise]], alpha: float) -> float | None:
    """The (1-α) quantile of |Σ cᵢZᵢ|: OpenDP's accuracy for one term, exact otherwise."""
    live = [(c, n) for c, n in coefs if c != 0 and n.raw_scale != 0]
    if not live:
        return 0.0
    if any(not math.isfinite(c) for c, _ in live):
        return None
    if len(live) == 1:
        c, n = live[0]
        acc = _accuracy(n, alpha)
        return None if acc is None else abs(c) * acc
    if all(n.is_gaussian for _, n in live):
        return gaussian_sum_quantile([abs(c) * n.scale for c, n in live], alpha)
    if not all(n.is_laplace for _, n in live):
        return None
    return laplace_sum_quantile([abs(c) * n.scale for c, n in live], alpha)


def gaussian_sum_quantile(sigmas: Sequence[float], alpha: float) -> float:
    """The (1-α) quantile of |Σ Gᵢ| for independent Gaussian Gᵢ of standard deviations
    ``sigmas``: z(1-α/2)·√Σσᵢ² (for OpenDP's discrete Gaussian, whose variance is a little
    below σ², slightly conservative).

    >>> round(gaussian_sum_quantile([3.0, 4.0], 0.05), 4)
    9.7998
    """
    return NormalDist().inv_cdf(1 - alpha / 2) * math.sqrt(sum(s * s for s in sigmas))



def _crossing(
    f: Callable[[float], float],
    x0: float,
    f0: float,
    x1: float,
    f1: float,
    tol: float,
    ftol: float = 0.0,
) -> float:
    """A root of ``f`` between x0 and x1 (f0 and f1 of opposite signs): secant steps through
    the two latest points, bisection when a step leaves the bracket."""
    lo, hi, fhi = x0, x1, f1  # the bracket (and the sign at its hi end)
    xa, fa, xb, fb = x0, f0, x1, f1  # the latest two points
    for _ in range(200):
        x = xb - fb * (xb - xa) / (fb - fa) if fb != fa else (lo + hi) / 2
        if not min(lo, hi) < x < max(lo, hi):
            x = (lo + hi) / 2
        fx = f(x)
        if abs(fx) <= ftol or abs(x - xb) <= tol:
            return x
        if (fx > 0) == (fhi > 0):
            hi, fhi = x, fx
        else:
            lo = x
        xa, fa, xb, fb = xb, fb, x, fx
        if abs(hi - lo) <= tol:
            return x
    return xb
