"""Simultaneous intervals for the pairwise contrasts of independent estimates: one event
under which every difference and ratio of a comparison is covered at once (for Laplace
errors, and under zCDP for Gaussian ones).

>>> from privacy.dp_intervals.estimates import Estimate
>>> from privacy.release import Noise
>>> groups = [Estimate.of(v, Noise("Float Laplace", 1.0)) for v in (10.0, 12.0, 15.0)]
>>> halfwidths, shift = simultaneous_pairs(groups)
>>> [round(u, 3) for u in halfwidths], round(shift, 3)
([2.564, 2.564, 2.564], 2.564)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from privacy.dp_intervals.estimates import Estimate
from privacy.dp_intervals.quantiles import (
    _crossing,
    _mixture,
    gaussian_sum_quantile,
    laplace_sum_quantile,
)


def _np() -> Any:
    import numpy

    return numpy


#: Gauss–Legendre nodes and weights on [-1, 1] per mesh piece
_GL_POINTS = 6
#: the bound on a contrast family's common shift, in units of the most precise estimate's
#: own 95% half-width (times the family's multiplier t)
ANCHOR = 1.0


@dataclass(frozen=True)
class _Laws:
    """The laws of g independent errors, each Σ cᵢZᵢ (a Laplace mixture: row k of ``b`` and
    ``w``, padded with zero weights)."""

    b: Any  # (g, K) scales
    w: Any  # (g, K) weights
    width: Any  # (g,) a length on which each law varies

    @classmethod
    def of(cls, mixtures: Sequence[tuple[list[float], list[float]]]) -> _Laws:
        np = _np()
        k = max(len(b) for b, _ in mixtures)
        b = np.ones((len(mixtures), k))
        w = np.zeros((len(mixtures), k))
        for i, (bi, wi) in enumerate(mixtures):
            b[i, : len(bi)] = bi
            w[i, : len(wi)] = wi
        return cls(b, w, b.max(axis=1))

    def cdf_pdf(self, x: Any, density: bool = True) -> tuple[Any, Any]:
        """F(x) and f(x) (None unless ``density``) for x of shape (g, M), row i under law i."""
        np = _np()
        e = self.w[:, None, :] * np.exp(-np.abs(x)[..., None] / self.b[:, None, :])
        tail = 0.5 * e.sum(-1)
        cdf = np.where(x >= 0, 1.0 - tail, tail)
        if not density:
            return cdf, None
        return cdf, (e / (2 * self.b[:, None, :])).sum(-1)


@lru_cache(maxsize=1)
def _gauss_legendre() -> tuple[Any, Any]:
    return _np().polynomial.legendre.leggauss(_GL_POINTS)  # type: ignore[no-any-return]


#: where the quadrature mesh is refined around each kink, in units of the law's width
_REFINE = (0.3, 1.5, 6.0)


def _family_probability(laws: _Laws | _GaussLaws, u: Any, w: float) -> float:
    """P(some x with |x| <= w lies in every [eᵢ − uᵢ, eᵢ + uᵢ]) for independent eᵢ ~ ``laws``:
    ∫₋ᵥʷ Σᵢ fᵢ(x + uᵢ) Πⱼ≠ᵢ Gⱼ(x) dx (the highest lower end eᵢ − uᵢ is x, in [−w, w])
    + Πᵢ Gᵢ(−w) (every lower end below −w, every upper end above), Gⱼ(x) = Fⱼ(x + uⱼ) −
    Fⱼ(x − uⱼ)."""
    np = _np()
    width = laws.width
    reach = np.sort(u + 40 * width)
    span = min(reach[1] if reach.size > 1 else reach[0], w)  # all but one error lie within
    kinks = np.concatenate([-u, u])
    widths = np.concatenate([width, width])
    refine = np.asarray(_REFINE)
    marks = np.concatenate(
        [
            kinks,
            (kinks[:, None] - widths[:, None] * refine[None, :]).ravel(),
            (kinks[:, None] + widths[:, None] * refine[None, :]).ravel(),
            np.linspace(-span, span, 41),
        ]
    )
    edges = np.unique(np.clip(marks, -span, span))
    lo, hi = edges[:-1], edges[1:]
    xi, wi = _gauss_legendre()
    x = (((hi + lo) / 2)[:, None] + ((hi - lo) / 2)[:, None] * xi[None, :]).ravel()
    weights = (((hi - lo) / 2)[:, None] * wi[None, :]).ravel()
    x = np.append(x, -w)  # the last column: G at −w, for the second term
    xs = np.broadcast_to(x, (u.size, x.size))
    upper, f = laws.cdf_pdf(xs + u[:, None])
    g = upper - laws.cdf_pdf(xs - u[:, None], density=False)[0]
    ones = np.ones((1, x.size - 1))
    gi = g[:, :-1]
    before = np.cumprod(np.vstack([ones, gi[:-1]]), axis=0)
    after = np.cumprod(np.vstack([ones, gi[::-1][:-1]]), axis=0)[::-1]
    inner = float(((f[:, :-1] * before * after).sum(axis=0) * weights).sum())
    return inner + float(np.prod(g[:, -1]))


def _error_laws(
    estimates: Sequence[Estimate], alpha: float
) -> tuple[list[tuple[list[float], list[float]]], list[float], list[float]] | None:
    """Per estimate: its error's Laplace mixture, its own (1-α) half-width, and its Šidák
    half-width over the family relative to its own; None unless every error is Laplace."""
    mixtures: list[tuple[list[float], list[float]]] = []
    own: list[float] = []
    sidak: list[float] = []
    g_alpha = 1 - (1 - alpha) ** (1 / max(len(estimates), 1))
    for e in estimates:
        noise = e.noise
        if not all(n.is_laplace for _, n in noise):
            return None
        scales = [abs(c) * n.scale for c, n in noise if n.raw_scale != 0]
        scales = scales or [1e-12 * max(abs(e.value), 1.0)]
        mixtures.append(_mixture(scales))
        own.append(laplace_sum_quantile(scales, alpha))
        sidak.append(laplace_sum_quantile(scales, g_alpha) / own[-1])
    return mixtures, own, sidak


@dataclass(frozen=True)
class _GaussLaws:
    """The laws of g independent Gaussian errors (zCDP), of standard deviations ``sigma``."""

    sigma: Any  # (g,)

    @property
    def width(self) -> Any:
        return self.sigma

    def cdf_pdf(self, x: Any, density: bool = True) -> tuple[Any, Any]:
        """F(x) and f(x) (None unless ``density``) for x of shape (g, M), row i under law i."""
        np = _np()
        z = x / self.sigma[:, None]
        erf = np.frompyfunc(math.erf, 1, 1)  # numpy has none: the standard library's, exact
        cdf = 0.5 * (1.0 + erf(z / math.sqrt(2.0)).astype(float))
        if not density:
            return cdf, None
        return cdf, np.exp(-0.5 * z * z) / (self.sigma[:, None] * math.sqrt(2 * math.pi))


def _gaussian_laws(
    estimates: Sequence[Estimate], alpha: float
) -> tuple[_GaussLaws, list[float], list[float]] | None:
    """Per estimate under zCDP (every error Gaussian): the laws, each one's own (1-α)
    half-width, and its Šidák half-width over the family relative to its own (the same for
    all: z at 1 − α_g/2 over z at 1 − α/2); None unless every error is Gaussian."""
    if not estimates or not all(n.is_gaussian for e in estimates for _, n in e.noise):
        return None
    g_alpha = 1 - (1 - alpha) ** (1 / len(estimates))
    sigmas = []
    for e in estimates:
        terms = [abs(c) * n.scale for c, n in e.noise if n.raw_scale != 0]
        sigmas.append(math.sqrt(sum(t * t for t in terms)) or 1e-12 * max(abs(e.value), 1.0))
    own = [gaussian_sum_quantile([sd], alpha) for sd in sigmas]
    sidak = [gaussian_sum_quantile([1.0], g_alpha) / gaussian_sum_quantile([1.0], alpha)] * len(own)
    return _GaussLaws(_np().asarray(sigmas)), own, sidak


def simultaneous_pairs(
    estimates: Sequence[Estimate], alpha: float = 0.05
) -> tuple[list[float], float] | None:
    """Half-widths u₁ … u_g and a shift bound w for independent ``estimates`` (their
    linearized errors eᵢ) such that, with probability 1-α, some x with |x| <= w has
    |eᵢ − x| <= uᵢ for every i at once. Then every difference xᵢ − xⱼ is within ±(uᵢ + uⱼ)
    and every ratio within the range of (xᵢ − eᵢ)/(xⱼ − eⱼ) over that set: ONE event for
    all the contrasts of a comparison. uᵢ = t·sᵢ (sᵢ: each estimate's own 95% half-width)
    and w = ``ANCHOR``·t·min sᵢ (the common shift cannot stray far from the most precise
    estimate's error anyway, so bounding it costs little), t solved for. The laws are sums
    of Laplace noise, or under zCDP Gaussian; None when they are neither."""
    np = _np()
    laws: _Laws | _GaussLaws
    gaussian = _gaussian_laws(estimates, alpha)
    if gaussian is not None:
        laws, own, sidak = gaussian
    else:
        error_laws = _error_laws(estimates, alpha)
        if error_laws is None:
            return None
        mixtures, own, sidak = error_laws
        if len(own) < 2:
            return [0.0] * len(own), 0.0
        laws = _Laws.of(mixtures)
    if len(own) < 2:
        return [0.0] * len(own), 0.0
    s = np.asarray(own)
    anchor = ANCHOR * float(s.min())
    log_alpha = math.log(alpha)

    def excess(t: float) -> float:
        """log(P(some contrast not covered)) − log α: falls almost linearly in t."""
        return math.log(max(1.0 - _family_probability(laws, t * s, t * anchor), 1e-300)) - log_alpha

    # t = max Šidák/own: every |eᵢ| <= uᵢ at once with probability >= 1-α (x = 0 then
    # serves), so the family holds at least as often. From there a Newton step with the
    # slope of Laplace tails (d log P(miss)/dt is about −ln(1/0.05) when one group's noise
    # dominates each pair, twice that for equal groups), then secant steps on log P(miss),
    # nearly linear in t, to 0.5% of α (coverage within 0.03%).
    hi = max(sidak)
    f_hi = excess(hi)
    while f_hi > 0:  # (only by quadrature error)
        hi *= 1.25
        f_hi = excess(hi)
    slope = 1.5 * math.log(1 / 0.05)
    lo = max(hi + f_hi / slope, 0.5 * hi)
    f_lo = excess(lo)
    while f_lo <= 0:
        hi, f_hi, lo = lo, f_lo, lo - 0.1 * hi
        f_lo = excess(lo) if lo > 0 else -log_alpha
    t = _crossing(excess, lo, f_lo, hi, f_hi, 1e-6 * hi, 5e-3)
    return [t * v for v in own], t * anchor


def ratio_range(x: float, y: float, ux: float, uy: float, w: float) -> tuple[float, float] | None:
    """The range of (x − eₓ)/(y − e_y) over the set of :func:`simultaneous_pairs`: eₓ, e_y
    within uₓ, u_y of a common shift in [−w, w] (monotone in the shift: its ends); None
    unless the denominator stays positive there."""
    if not y - uy - w > 0:
        return None
    ends = [(x + ux - z) / (y - uy - z) for z in (-w, w)]
    starts = [(x - ux - z) / (y + uy - z) for z in (-w, w)]
    return min(starts), max(ends)
