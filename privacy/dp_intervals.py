"""Intervals for DP estimates and for values derived from them (post-processing only).

Every interval here covers "the quantity as defined": the non-private statistic of the rows
OpenDP read (after clamping and per-person truncation), not any other definition. Its only
randomness is OpenDP's noise; no sampling error is claimed or covered.

**Noise.** An :class:`Estimate` is a value plus its error written as Σ cᵢ·Zᵢ, where each Zᵢ
is the independent noise OpenDP added to one released aggregate (a Laplace or discrete
Laplace variable of known scale) and cᵢ its coefficient (1 for a released count or sum; the
derivative, by the delta method, for a value combined from several). Each term carries the
id of its *draw*: an aggregate used twice in one derived value (the row count in both the
numerator and the denominator of a missing share) is one variable whose coefficients add,
not two independent ones.

**Half-widths are exact quantiles.** The (1-α) half-width of a raw aggregate is OpenDP's
own accuracy (``opendp.accuracy``, discrete or continuous). For a combination of several
draws it is the exact (1-α) quantile of |Σ cᵢZᵢ| for independent Laplace variables: their
sum has the closed-form tail P(|S| > t) = Σ wᵢ·exp(−t/bᵢ) (partial fractions of the
characteristic function Π 1/(1 + bᵢ²u²); scales within 2% of each other are first spread
apart symmetrically in log scale, which changes the tail by well under 1% and keeps the
weights well conditioned). A discrete Laplace term in a sum is taken as a continuous
Laplace of the same scale, whose variance is larger. (The quadrature rule used before,
sqrt(Σ (cᵢ·aᵢ)²) of the terms' accuracies, was up to 25% too wide at the small α of
simultaneous intervals.)

**Ratios use Fieller's method, not the delta method.** For r = offset + N/D with released N
and D, the pivot N − ρ·D has error X − ρ·Y (X, Y: the noise of N and D) whose law is known
exactly for every candidate ρ: the interval is {ρ : |N − ρD| ≤ q_α(|X − ρY|)}, with no
linearization of 1/D. It is bounded exactly when D's own (1-α) interval excludes zero;
otherwise there is no finite interval and :meth:`Ratio.bounded` says so (the catalogue then
withholds the mean rather than publish a false interval). The delta-method terms are still
kept, to combine ratios further (differences of means, correlations).

**Simultaneous intervals for pairwise contrasts** (:func:`simultaneous_pairs`): for
independent estimates with errors e₁ … e_g, half-widths u₁ … u_g and a bound w such that,
with probability exactly 1-α under the estimates' error laws, some common shift x with
|x| ≤ w has |eᵢ − x| ≤ uᵢ for EVERY i. On that one event every difference xᵢ − xⱼ is
within ±(uᵢ + uⱼ) and every ratio xᵢ/xⱼ within the range of (xᵢ − eᵢ)/(xⱼ − eⱼ) over it
(:func:`ratio_range`): all the differences and ratios of a comparison cover together.
Without the bound on x this is the event that all pairwise |eᵢ − eⱼ| ≤ uᵢ + uⱼ (Helly's
theorem in one dimension: intervals that meet pairwise share a point); the bound is what
lets it speak of ratios too, and costs little, as x stays near the most precise
estimate's error anyway. Its probability is the one-dimensional integral
∫₋ᵥʷ Σᵢ fᵢ(x + uᵢ) Πⱼ≠ᵢ [Fⱼ(x + uⱼ) − Fⱼ(x − uⱼ)] dx + Πᵢ [Fᵢ(uᵢ − w) − Fᵢ(−uᵢ − w)]
(Gauss–Legendre quadrature on a mesh refined at every kink); with uᵢ = t·sᵢ (sᵢ: each
estimate's own 95% half-width) and w proportional to t, the multiplier t is solved for.
Bonferroni over the pairs is valid too but, when one noisy group dominates all its pairs,
counts nearly one event many times and covered 98.5–99% instead of 95%.

**Clipping** a value into its public range (a mean inside its measure's bounds, a share
inside [0, 1], r inside [-1, 1]) and intersecting its interval with that range never loses
coverage: the quantity as defined lies in the range.

No randomness here: intervals are analytic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from privacy.release import Noise

#: (coefficient, noise of one released aggregate, draw id)
Term = tuple[float, Noise, int]
Clip = tuple[float | None, float | None]

_DRAWS = itertools.count(1)
#: relative gap below which two scales of a sum are spread apart (see the module docstring)
_GAP = 0.02


def new_draw() -> int:
    """A fresh draw id: one per released aggregate value."""
    return next(_DRAWS)


# --------------------------------------------------------------------------- exact quantiles


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
    log_a, log_alpha = math.log(1 / alpha), math.log(alpha)
    if len(b) == 1:
        return b[0] * log_a
    # P(|S| > t) >= P(|L_max| > t) (Anderson) and <= Σ P(|Lᵢ| > bᵢ·t/Σb) (union bound)
    lo, hi = b[-1] * log_a, sum(b) * math.log(len(b) / alpha)
    # start where the slowest exponential alone would give α (the tail's asymptote)
    t = b[-1] * math.log(w[-1] / alpha) if w[-1] > 0 else lo
    t = min(max(t, lo), hi)
    for _ in range(100):
        p = dp = 0.0
        for wk, bk in zip(w, b, strict=True):
            e = wk * math.exp(-t / bk)
            p += e
            dp -= e / bk
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


def _two_quantile(a: float, b: float, alpha: float) -> float:
    """``laplace_sum_quantile([a, b], alpha)`` for a > b (1 + 2%): P(|S| > t) =
    (a²·e^(−t/a) − b²·e^(−t/b)) / (a² − b²), solved by Newton's method on its logarithm."""
    wa, wb = a * a / (a * a - b * b), -b * b / (a * a - b * b)
    log_alpha = math.log(alpha)
    lo, hi = a * math.log(1 / alpha), (a + b) * math.log(2 / alpha)
    t = min(max(a * math.log(wa / alpha), lo), hi)
    for _ in range(50):
        ea, eb = wa * math.exp(-t / a), wb * math.exp(-t / b)
        p, dp = ea + eb, -ea / a - eb / b
        if p > alpha:
            lo = t
        else:
            hi = t
        nt = t - (math.log(p) - log_alpha) * p / dp if p > 0 else (lo + hi) / 2
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
    if not all(n.is_laplace for _, n in live):
        return None
    return laplace_sum_quantile([abs(c) * n.scale for c, n in live], alpha)


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


# --------------------------------------------------------------------------- estimates


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


# --------------------------------------------------------------------------- simultaneous pairs


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


def _family_probability(laws: _Laws, u: Any, w: float) -> float:
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


def simultaneous_pairs(
    estimates: Sequence[Estimate], alpha: float = 0.05
) -> tuple[list[float], float] | None:
    """Half-widths u₁ … u_g and a shift bound w for independent ``estimates`` (their
    linearized errors eᵢ) such that, with probability 1-α, some x with |x| <= w has
    |eᵢ − x| <= uᵢ for every i at once. Then every difference xᵢ − xⱼ is within ±(uᵢ + uⱼ)
    and every ratio within the range of (xᵢ − eᵢ)/(xⱼ − eⱼ) over that set: ONE event for
    all the contrasts of a comparison. uᵢ = t·sᵢ (sᵢ: each estimate's own 95% half-width)
    and w = ``ANCHOR``·t·min sᵢ (the common shift cannot stray far from the most precise
    estimate's error anyway, so bounding it costs little), t solved for. None when an error
    law is not a sum of Laplace noise."""
    np = _np()
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
    if len(mixtures) < 2:
        return [0.0] * len(mixtures), 0.0
    laws = _Laws.of(mixtures)
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
