"""Clamping bounds estimated under DP, for measures declared ``bounds: auto``.

Nobody has to guess a measure's range: each release first spends ``AutoBounds.share`` of
its ε on DP histograms of the measure over a public grid of candidate values (log-spaced,
ten per decade, so neighbours differ by at most 26%: 0, the integers to 10 and ±10^(k/10)
from 10^-3 to 10^12, inside ``within`` when the contract gives it), then takes as bounds
the range of the cells that hold values: from the fullest cell, grown outwards while a
cell within ``LOOKAHEAD`` cells has a noisy count above ``EXTEND`` noise scales or a clearly
non-empty cell (above the family-wise half-width) is within ``REACH`` times the range's
magnitude, plus ``MARGIN`` cells on each side. The noise of the many empty cells of a wide
grid is never taken for values, and a spike at 0 keeps the whole numbers beyond the fine
cells below 1. With a privacy unit the lower bound comes from a histogram of each person's
lowest value and the upper one from each person's highest: a person counts once in each,
whatever their rows, so the noise does not grow with ``max_rows_per_unit``.

The grid and the rule are public and the counts are DP, so the bounds are DP outputs
(post-processing): they are published with the release (the ``bounds`` release), and the
rest of the release is clamped to them; values beyond them are counted in the quality
shares, as for typed-in bounds. Where the values have thin tails and the file is small,
the estimate cuts some of the tail (a bias the quality shares disclose): ``within`` or
typed-in bounds are then the better choice. ``bench/bounds.py`` measures this.

    >>> edges = candidate_edges(None)
    >>> edges[0], edges[-1], len(edges)
    (-1000000000000.0, 1000000000000.0, 317)
    >>> candidate_edges((0.0, 2.0))[-5:]
    [0.794, 1.0, 1.26, 1.58, 2.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from privacy.budget import Loss, PrivacyLoss, compose
from privacy.contract import Analysis, ColumnType, Contract, Role
from privacy.release import (
    LEN,
    CalibrationCache,
    QueryResult,
    QuerySpec,
    ReleaseEngine,
    count_agg,
    prepare_frame,
)
from privacy.results import PublishedValue, Release

#: a cell next to the range joins it when its noisy count passes this many noise scales
EXTEND = 2.5
#: cells added beyond the last one that joined, on each side
MARGIN = 0
#: how many empty-looking cells in a row the range may cross to reach a passing one (the
#: gaps between the integers of a count, between decimals of a rounded value)
LOOKAHEAD = 3
#: a clearly non-empty cell joins when its values are within this factor of the range's
#: largest magnitude (at least 1): real values, far in cells but near in value
REACH = 10.0
#: the candidate grid: ±10^(k/10) for k in this range (10^-3 .. 10^12), and 0
_POWERS = range(-30, 121)
#: the chance, over all cells, that an empty cell's noise passes for values
FAMILY_ALPHA = 0.05
Bounds = tuple[float, float] | None


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def candidate_edges(within: tuple[float, float] | None) -> list[float]:
    """The public grid of candidate bounds, increasing; inside ``within`` (whose ends are
    candidates too) when given."""
    magnitudes = {_round(10.0 ** (k / 10)) for k in _POWERS} | {float(i) for i in range(1, 11)}
    grid = sorted({0.0, *magnitudes, *(-m for m in magnitudes)})
    if within is None:
        return grid
    lo, hi = within
    return [lo, *(g for g in grid if lo < g < hi), hi]


def cell_expr(column: pl.Expr, edges: Sequence[float]) -> pl.Expr:
    """The grid cell of each value (0 .. len(edges) - 2, cell i = [edges[i], edges[i+1]));
    values beyond the grid fall in the first or last cell, nulls in none. Row-wise."""
    inner = list(edges[1:-1])
    labels = [str(i) for i in range(len(inner) + 1)]
    return column.cut(inner, labels=labels, left_closed=True).cast(pl.String).cast(pl.Int64)


def pick_bounds(
    counts: Sequence[float],
    halfwidths: Sequence[float],
    edges: Sequence[float],
    integer: bool = False,
    scale: float = 0.0,
) -> tuple[float, float] | None:
    """Bounds from the noisy cell counts: the range grows outwards from the fullest cell
    (which must be clearly non-empty: above its half-width at level ``FAMILY_ALPHA`` over
    all cells, in ``halfwidths``) while a cell within ``LOOKAHEAD`` cells passes ``EXTEND``
    noise scales, or a clearly non-empty cell lies within ``REACH`` times the range's
    largest magnitude (at least 1), and then by ``MARGIN`` more cells. The reach crosses
    the fine cells below 1, which hold no values when the values are a spike at 0 and
    whole numbers; an isolated noisy cell far from the values never joins. None when no
    cell is clearly non-empty."""
    top = max(range(len(counts)), key=lambda i: counts[i])
    if counts[top] <= halfwidths[top]:
        return None
    step = EXTEND * scale
    passing = [c > step for c in counts]
    clear = [i for i, (c, h) in enumerate(zip(counts, halfwidths, strict=True)) if c > h]
    lo_cell = hi_cell = top
    while True:
        was = (lo_cell, hi_cell)
        reach = REACH * max(abs(edges[lo_cell]), abs(edges[hi_cell + 1]), 1.0)
        near = [i for i in clear if max(abs(edges[i]), abs(edges[i + 1])) <= reach]
        lo_cell, hi_cell = min(lo_cell, *near), max(hi_cell, *near)
        down = [j for j in range(lo_cell - 1, max(lo_cell - 1 - LOOKAHEAD, -1), -1) if passing[j]]
        up = [j for j in range(hi_cell + 1, min(hi_cell + 1 + LOOKAHEAD, len(counts))) if passing[j]]
        lo_cell, hi_cell = (down or [lo_cell])[0], (up or [hi_cell])[0]
        if (lo_cell, hi_cell) == was:
            break
    lo_cell, hi_cell = max(lo_cell - MARGIN, 0), min(hi_cell + MARGIN, len(counts) - 1)
    lo, hi = edges[lo_cell], edges[hi_cell + 1]
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
    if lo >= hi:
        hi = lo + 1.0
    return float(lo), float(hi)




# --------------------------------------------------------------------------- the DP step


@dataclass(frozen=True)
class EstimatedBounds:
    """What the bounds step released: per measure the bounds (None: no clear cell, the
    measure keeps its ``within`` limits or is not released), and the release to publish."""

    bounds: dict[str, tuple[float, float] | None]
    release: Release
    loss: Loss


def auto_measures(contract: Contract) -> list[str]:
    return [
        n
        for n, c in contract.columns.items()
        if c.role is Role.MEASURE and c.auto_bounds is not None
    ]


def auto_share(contract: Contract) -> float:
    """The share of each release's ε the bounds step spends (the largest asked for)."""
    shares = [c.auto_bounds.share for c in contract.columns.values() if c.auto_bounds]
    return max(shares, default=0.0)


def _edges(contract: Contract, m: str) -> list[float]:
    auto = contract.columns[m].auto_bounds
    assert auto is not None
    return candidate_edges(auto.within)


def _specs(contract: Contract) -> tuple[dict[str, pl.Expr], list[tuple[str, str, QuerySpec]]]:
    """The prepared cell columns, and per measure the histogram(s) to release: with a
    privacy unit, one of each person's lowest cell (for the lower bound) and one of their
    highest (for the upper), so that a person is counted once in each whatever their rows;
    otherwise one histogram of the values for both."""
    columns: dict[str, pl.Expr] = {}
    specs: list[tuple[str, str, QuerySpec]] = []
    for m in auto_measures(contract):
        edges = _edges(contract, m)
        cell = f"cell:{m}"
        columns[cell] = cell_expr(pl.col(m).cast(pl.Float64, strict=False).fill_nan(None), edges)
        cells = pl.Series(range(len(edges) - 1), dtype=pl.Int64)
        if contract.privacy_unit is None:
            keys = pl.DataFrame({cell: cells})
            specs.append((m, "both", QuerySpec(f"bounds:{m}", (count_agg(LEN),), (cell,), keys)))
            continue
        sides: tuple[tuple[Literal["min", "max"], str], ...] = (("min", "lower"), ("max", "upper"))
        for how, side in sides:
            name = f"{how}-cell:{m}"
            keys = pl.DataFrame({name: cells})
            spec = QuerySpec(
                f"bounds-{side}:{m}", (count_agg(LEN),), (name,), keys, reduce=(cell, how)
            )
            specs.append((m, side, spec))
    return columns, specs


def _counts(res: QueryResult, spec: QuerySpec, cells: int) -> list[float]:
    counts = [0.0] * cells
    for row in res.frame.iter_rows(named=True):
        if row[spec.by[0]] is not None and row[LEN] is not None:
            counts[int(row[spec.by[0]])] = float(row[LEN])
    return counts


def _pick(res: QueryResult, spec: QuerySpec, edges: list[float], integer: bool) -> Bounds:
    noise = res.noise[LEN]
    half = noise.accuracy(FAMILY_ALPHA / (len(edges) - 1)) or 0.0
    counts = _counts(res, spec, len(edges) - 1)
    return pick_bounds(counts, [half] * len(counts), edges, integer, noise.raw_scale)


def estimate_bounds(
    masked: pl.LazyFrame,
    contract: Contract,
    loss: Loss,
    cache: CalibrationCache | None = None,
) -> EstimatedBounds:
    """Release the DP histograms of the ``bounds: auto`` measures within ``loss`` (split
    evenly) and pick each measure's bounds from them (see the module docstring)."""
    columns, specs = _specs(contract)
    prepared = prepare_frame(masked, contract, columns, spill_rows=None)
    try:
        engine = ReleaseEngine(contract, prepared, cache)
        share = loss.part(1 / len(specs), 0.0)
        results = [engine.release(spec, share) for _, _, spec in specs]
    finally:
        prepared.close()
    picked: dict[str, dict[str, Bounds]] = {}
    total: Loss | None = None
    for (m, side, spec), res in zip(specs, results, strict=True):
        integer = contract.columns[m].type is ColumnType.INTEGER
        picked.setdefault(m, {})[side] = _pick(res, spec, _edges(contract, m), integer)
        total = compose(total, res.loss)
    assert total is not None
    bounds: dict[str, Bounds] = {}
    values: list[PublishedValue] = []
    texts: list[str] = []
    for m, sides in picked.items():
        both = sides.get("both")
        lower = both if both is not None else sides.get("lower")
        upper = both if both is not None else sides.get("upper")
        b = None
        if lower is not None and upper is not None and lower[0] < upper[1]:
            b = (lower[0], upper[1])
        bounds[m] = b
        label = m.replace("_", " ")
        if b is None:
            texts.append(
                f"Too few values of {label} to estimate its bounds at this privacy budget: "
                "nothing about it is released (give public bounds or more rows)."
            )
            continue
        values += [
            PublishedValue("clamp_lower", b[0], None, None, None, m),
            PublishedValue("clamp_upper", b[1], None, None, None, m),
        ]
        texts.append(
            f"Values of {label} were clamped to {_fmt(b[0])} to {_fmt(b[1])}, a range "
            "estimated under DP from this file."
        )
    mech = "laplace" if isinstance(total, PrivacyLoss) else "gaussian"
    release = Release("bounds", "bounds", mech, total, values, texts)
    return EstimatedBounds(bounds, release, total)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:g}"


def with_bounds(contract: Contract, bounds: dict[str, tuple[float, float] | None]) -> Contract:
    """``contract`` with each estimated measure's bounds typed in; a measure without an
    estimate keeps its public ``within`` limits, or leaves the analyses that use it."""
    columns = dict(contract.columns)
    dropped: set[str] = set()
    for m, b in bounds.items():
        auto = columns[m].auto_bounds
        chosen = b if b is not None else (auto.within if auto is not None else None)
        if chosen is None:
            dropped.add(m)
            chosen = (0.0, 1.0)  # placeholder: no analysis reads it
        columns[m] = columns[m].model_copy(update={"bounds": chosen})
    analyses = [a for a in contract.analyses if not _reads(a, dropped)]
    return contract.model_copy(update={"columns": columns, "analyses": analyses})


def _reads(analysis: Analysis, measures: set[str]) -> bool:
    fields = ("measure", "measures")
    used: set[str] = set()
    for f in fields:
        v = getattr(analysis, f, None)
        if isinstance(v, str):
            used.add(v)
        elif isinstance(v, list):
            used |= set(v)
    if analysis.kind == "summary" and getattr(analysis, "measures", None) is None:
        return False  # the summary of every measure: the others still release
    return bool(used & measures)
