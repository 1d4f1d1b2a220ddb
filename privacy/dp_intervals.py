"""Intervals for DP estimates and for values derived from them (post-processing only).

An :class:`Estimate` is a value plus its *linearized* noise: error ≈ Σ cᵢ·Zᵢ, where each Zᵢ
is the independent noise OpenDP added to one released aggregate (a Laplace or discrete
Laplace variable of known scale) and cᵢ the derivative of the value with respect to that
aggregate (the delta method). A raw DP count or sum has a single term with c = 1, so its
interval is exactly OpenDP's accuracy.

The (1-α) half-width of a combination is taken as ``sqrt(Σ (cᵢ·aᵢ(α))²)`` where aᵢ(α) is
OpenDP's accuracy of term i at level α (``opendp.accuracy``). When one term dominates this is
that term's exact quantile; for several comparable Laplace terms it is slightly wider than
the true quantile of the sum (the Laplace tail is heavier than the Gaussian one the
quadrature rule assumes for the sum), so the intervals err on the side of covering. The
nonlinearity of ratios is ignored (delta method), which is accurate when the denominator's
noise is small relative to it; the ``clip`` range (e.g. a mean inside its measure's public
bounds, a correlation inside [-1, 1]) is applied afterwards, which never loses coverage.

No randomness here: intervals are analytic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from privacy.release import Noise

Term = tuple[float, Noise]


@dataclass(frozen=True)
class Estimate:
    value: float
    terms: tuple[Term, ...] = ()
    clip: tuple[float | None, float | None] = (None, None)

    @classmethod
    def of(
        cls,
        value: float,
        noise: Noise | None,
        clip: tuple[float | None, float | None] = (None, None),
    ) -> Estimate:
        """A directly released aggregate."""
        return cls(float(value), ((1.0, noise),) if noise is not None else (), clip)

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
        total = 0.0
        for coef, noise in self.terms:
            acc = noise.accuracy(alpha)
            if acc is None or not math.isfinite(coef):
                return None
            total += (coef * acc) ** 2
        return math.sqrt(total)

    def interval(self, alpha: float = 0.05) -> tuple[float, float] | None:
        h = self.halfwidth(alpha)
        if h is None or not math.isfinite(self.value):
            return None
        lo, hi = self.value - h, self.value + h
        clo, chi = self.clip
        if clo is not None:
            lo, hi = max(lo, clo), max(hi, clo)
        if chi is not None:
            lo, hi = min(lo, chi), min(hi, chi)
        return lo, hi

    @property
    def scale(self) -> float | None:
        """The effective noise scale: sqrt(Σ (cᵢ·bᵢ)²); the OpenDP scale for a raw aggregate."""
        if not self.terms:
            return None
        return math.sqrt(sum((c * n.scale) ** 2 for c, n in self.terms))

    def excludes(self, point: float, alpha: float = 0.05) -> bool:
        iv = self.interval(alpha)
        return iv is not None and not (iv[0] <= point <= iv[1])


def _merge(*groups: tuple[float, tuple[Term, ...]]) -> tuple[Term, ...]:
    out: list[Term] = []
    for factor, terms in groups:
        out.extend((factor * c, n) for c, n in terms)
    return tuple(out)


def ratio(
    num: Estimate, den: Estimate, clip: tuple[float | None, float | None] = (None, None)
) -> Estimate | None:
    """num/den with delta-method noise; None when the denominator is not positive."""
    if den.value <= 0:
        return None
    r = num.value / den.value
    terms = _merge((1 / den.value, num.terms), (-num.value / den.value**2, den.terms))
    return Estimate(r, terms, clip)


def linear(
    parts: Sequence[tuple[float, Estimate]], clip: tuple[float | None, float | None] = (None, None)
) -> Estimate:
    """Σ cᵢ·eᵢ of estimates with independent noise (unclipped values)."""
    value = sum(c * e.value for c, e in parts)
    return Estimate(value, _merge(*((c, e.terms) for c, e in parts)), clip)


def difference(a: Estimate, b: Estimate) -> Estimate:
    """a - b, independent noise terms."""
    return Estimate(a.clipped - b.clipped, _merge((1.0, a.terms), (-1.0, b.terms)))


def function_of(
    f: Callable[[Sequence[float]], float],
    inputs: Sequence[Estimate],
    clip: tuple[float | None, float | None] = (None, None),
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
