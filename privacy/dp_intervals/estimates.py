"""DP estimates and values derived from them, with intervals: an ``Estimate`` is a value
and its error as Σ cᵢ·Zᵢ over the noise draws it uses; ratios get Fieller intervals.

>>> from privacy.release import Noise
>>> total = Estimate.of(120.0, Noise("Float Laplace", 2.0))
>>> rows = Estimate.of(40.0, Noise("Integer Laplace", 1.0))
>>> mean = ratio(total, rows)
>>> mean.value, [round(v, 3) for v in mean.interval()]
(3.0, [2.752, 3.28])
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from privacy.dp_intervals.quantiles import _crossing, _quantile
from privacy.release import Noise

#: (coefficient, noise of one released aggregate, draw id)
Term = tuple[float, Noise, int]
Clip = tuple[float | None, float | None]

_DRAWS = itertools.count(1)


def new_draw() -> int:
    """A fresh draw id: one per released aggregate value."""
    return next(_DRAWS)


def _merged(terms: Sequence[Term]) -> dict[int, tuple[float, Noise]]:
    out: dict[int, tuple[float, Noise]] = {}
    for c, n, d in terms:
        prev = out.get(d)
        out[d] = (c if prev is None else prev[0] + c, n)
    return out


def _clip_interval(lo: float, hi: float, clip: Clip) -> tuple[float, float]:
    clo, chi = clip
    if clo is not None:
        lo, hi = max(lo, clo), max(hi, clo)
    if chi is not None:
        lo, hi = min(lo, chi), min(hi, chi)
    return lo, hi


@dataclass(frozen=True)
class Estimate:
    value: float
    terms: tuple[Term, ...] = ()
    clip: Clip = (None, None)

    @classmethod
    def of(cls, value: float, noise: Noise | None, clip: Clip = (None, None)) -> Estimate:
        """A directly released aggregate (a draw of its own)."""
        return cls(float(value), ((1.0, noise, new_draw()),) if noise is not None else (), clip)

    def plain(self) -> Estimate:
        """The same value and noise without clip or ratio structure (for combining)."""
        return Estimate(self.value, self.terms)

    @property
    def noise(self) -> list[tuple[float, Noise]]:
        """The error's terms, one per draw (coefficients of a repeated draw added)."""
        return [(c, n) for c, n in _merged(self.terms).values() if c != 0]

    @property
    def clipped(self) -> float:
        lo, hi = self.clip
        v = self.value
        if lo is not None:
            v = max(v, lo)
        if hi is not None:
            v = min(v, hi)
        return v

    def halfwidth(self, alpha: float = 0.05) -> float | None:
        """The exact (1-α) quantile of the (linearized) error's absolute value."""
        return _quantile(self.noise, alpha)

    def raw_interval(self, alpha: float = 0.05) -> tuple[float, float] | None:
        """The (1-α) interval around the unclipped value, not intersected with ``clip``."""
        h = self.halfwidth(alpha)
        if h is None or not math.isfinite(self.value):
            return None
        return self.value - h, self.value + h

    def interval(self, alpha: float = 0.05) -> tuple[float, float] | None:
        iv = self.raw_interval(alpha)
        return None if iv is None else _clip_interval(iv[0], iv[1], self.clip)

    @property
    def scale(self) -> float | None:
        """The effective noise scale: sqrt(Σ (cᵢ·bᵢ)²); the OpenDP scale for a raw aggregate."""
        noise = self.noise
        if not self.terms:
            return None
        return math.sqrt(sum((c * n.scale) ** 2 for c, n in noise))

    def excludes(self, point: float, alpha: float = 0.05) -> bool:
        iv = self.interval(alpha)
        return iv is not None and not (iv[0] <= point <= iv[1])


@dataclass(frozen=True)
class Ratio(Estimate):
    """offset + num/den: delta-method ``terms`` (to combine further), Fieller intervals."""

    num: Estimate | None = None
    den: Estimate | None = None
    offset: float = 0.0

    def fieller(self, alpha: float = 0.05) -> tuple[float, float] | None:
        """The unclipped Fieller interval; None when unbounded (the denominator's own
        interval includes zero) or when a noise has no additive accuracy."""
        assert self.num is not None and self.den is not None
        iv = fieller(self.num, self.den, alpha)
        return None if iv is None else (iv[0] + self.offset, iv[1] + self.offset)

    def bounded(self, alpha: float = 0.05) -> bool:
        return self.fieller(alpha) is not None

    def raw_interval(self, alpha: float = 0.05) -> tuple[float, float] | None:
        return self.fieller(alpha)

    def interval(self, alpha: float = 0.05) -> tuple[float, float] | None:
        iv = self.fieller(alpha)
        if iv is None:
            lo, hi = self.clip  # unbounded: only the public range is certain
            return (lo, hi) if lo is not None and hi is not None else None
        return _clip_interval(iv[0], iv[1], self.clip)

    def halfwidth(self, alpha: float = 0.05) -> float | None:
        """The larger side of the unclipped Fieller interval around the value."""
        iv = self.fieller(alpha)
        if iv is None:
            return None
        return max(self.value - iv[0], iv[1] - self.value, 0.0)


def fieller(num: Estimate, den: Estimate, alpha: float = 0.05) -> tuple[float, float] | None:
    """{ρ : |N − ρD| ≤ q(ρ)}, q(ρ) the exact (1-α) quantile of |X − ρY| (the errors of N
    and D, draws shared between them merged): the connected part around N/D; None when
    it is unbounded (D's own interval includes zero)."""
    xs, ys = _merged(num.terms), _merged(den.terms)
    # the noise as (x coefficient, y coefficient, noise) per draw: what the interval depends
    # on besides the two values (draw ids themselves do not matter: cached on this)
    noise = tuple(
        (xs[d][0] if d in xs else 0.0, ys[d][0] if d in ys else 0.0, (xs.get(d) or ys[d])[1])
        for d in dict.fromkeys((*xs, *ys))
    )
    return _fieller(num.value, den.value, noise, alpha)


@lru_cache(maxsize=8192)
def _fieller(
    a: float, b: float, noise: tuple[tuple[float, float, Noise], ...], alpha: float
) -> tuple[float, float] | None:
    if b < 0:  # |−N − ρ(−D)| = |N − ρD| and the noise law is symmetric
        a, b = -a, -b

    def q(rho: float) -> float | None:
        return _quantile([(cx - rho * cy, n) for cx, cy, n in noise], alpha)

    q_den = _quantile([(cy, n) for _, cy, n in noise], alpha)
    q0 = q(a / b) if b > 0 else None
    if q_den is None or q0 is None or not b > q_den:
        return None
    r0 = a / b

    def g(rho: float) -> float:
        qr = q(rho)
        assert qr is not None
        return abs(a - rho * b) - qr

    def root(direction: float) -> float:
        # secant steps outward from r0 (g(r0) = −q0 < 0) until g changes sign, then Illinois
        tol = 1e-8 * (abs(r0) + q0 / b)
        x0, g0 = r0, -q0
        x1 = r0 + direction * q0 / b
        g1 = g(x1)
        for _ in range(60):
            if g1 > 0:
                return _crossing(g, x0, g0, x1, g1, tol, 1e-8 * q0)
            if abs(x1 - x0) <= tol or -g1 <= 1e-8 * q0:
                return x1
            slope = (g1 - g0) / (x1 - x0) * direction
            step = -g1 / slope if slope > 0 else 2 * abs(x1 - r0)
            x0, g0 = x1, g1
            # aim just past the secant root, so that the sign changes
            x1 = x1 + direction * min(max(step, 0.0) + tol, 4 * abs(x1 - r0) + q0 / b)
            g1 = g(x1)
        return x1

    return root(-1.0), root(1.0)



def _merge(*groups: tuple[float, tuple[Term, ...]]) -> tuple[Term, ...]:
    out: list[Term] = []
    for factor, terms in groups:
        out.extend((factor * c, n, d) for c, n, d in terms)
    return tuple(out)


def ratio(num: Estimate, den: Estimate, clip: Clip = (None, None), offset: float = 0.0) -> Ratio | None:
    """offset + num/den with delta-method terms and a Fieller interval; None when the
    denominator is not positive."""
    if den.value <= 0:
        return None
    r = num.value / den.value
    terms = _merge((1 / den.value, num.terms), (-r / den.value, den.terms))
    return Ratio(r + offset, terms, clip, num.plain(), den.plain(), offset)


def linear(parts: Sequence[tuple[float, Estimate]], clip: Clip = (None, None)) -> Estimate:
    """Σ cᵢ·eᵢ (unclipped values; a draw shared by several parts counts once)."""
    value = sum(c * e.value for c, e in parts)
    return Estimate(value, _merge(*((c, e.terms) for c, e in parts)), clip)


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a − b of the clipped values, with the linearized noise of both."""
    return Estimate(a.clipped - b.clipped, _merge((1.0, a.terms), (-1.0, b.terms)))


def function_of(
    f: Callable[[Sequence[float]], float],
    inputs: Sequence[Estimate],
    clip: Clip = (None, None),
    rel_step: float = 1e-6,
) -> Estimate | None:
    """f(inputs) with noise terms by a numerical gradient (central differences)."""
    x = [e.value for e in inputs]
    try:
        value = f(x)
    except (ZeroDivisionError, ValueError):
        return None
    if not math.isfinite(value):
        return None
    groups: list[tuple[float, tuple[Term, ...]]] = []
    for i, e in enumerate(inputs):
        h = rel_step * max(abs(x[i]), 1.0)
        up, down = list(x), list(x)
        up[i] += h
        down[i] -= h
        try:
            grad = (f(up) - f(down)) / (2 * h)
        except (ZeroDivisionError, ValueError):
            return None
        groups.append((grad, e.terms))
    return Estimate(value, _merge(*groups), clip)

