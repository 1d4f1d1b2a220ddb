"""Calibration support: the non-private "quantity as defined" of every published value, and
coverage counted over repeated releases of one file.

:func:`truths` is an independent, plain-polars reading of what the catalogue says each value
is (see ``analytics.analyses``): a measure's values clamped to its public bounds; sums and
means over the values that are present (``missing: allow``) or over every row with blanks
counting as the public fill value (``missing: fill``); groups of public keys only (a row
whose key is not in the contract is not released); trends over the public periods; Pearson r
over the rows where every measure of the analysis is present; the quality shares as the
catalogue defines them (with a privacy unit: averaged over people, each person counting
once; the shares of people over ``max_rows_per_unit`` and of rows left out, 0 here). A share
whose truth is 0 sits at the end of its clipped range [0, 1], where only one side can miss:
it is counted in a case of its own (``AT_ZERO``, about 97.5%). So is, in ``NEAR_END``, a
share whose truth lies closer to 0 or 1 than its interval's median half-width over the
releases: its interval is clipped in most releases, and its coverage lies between 95% and
97.5%. Values published without an interval (quantiles, the public bounds) have no truth
here and are not counted. Per-person truncation is not modelled: every contract used for
calibration has ``max_rows_per_unit`` at least the largest number of rows a person has (checked here), so
no row is ever left out and the quantity as defined does not change between releases.

:func:`measure_coverage` resolves the plan once (``plan_analyses``) and calls
``ReleasePlan.run()`` per repeat; every published value with a known truth is a hit or a
miss. Differences and ratios also count per release as *families*: "contrast family" (every
difference and ratio of a comparison at once: what their simultaneous intervals promise),
"difference family" and "ratio family" (each kind alone).
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analytics.analyses import plan_analyses
from analytics.trends import is_integer_time, period_label, period_ordinal_expr, public_periods
from privacy.budget import Loss, PrivacyLoss, fits
from privacy.contract import (
    ComparisonAnalysis,
    Contract,
    CorrelationAnalysis,
    DistributionAnalysis,
    Missing,
    SummaryAnalysis,
    TrendAnalysis,
)
from privacy.results import PublishedValue

#: (release kind, metric, column, group items)
Key = tuple[str, str, str | None, tuple[tuple[str, str], ...]]
#: kinds whose intervals are simultaneous over a comparison (coverage counted per family)
CONTRASTS = ("difference", "ratio")
#: the coverage every kind must show (95% intervals)
BAND = (0.92, 0.98)
#: cases with at least this many intervals must be inside the band on their own
CASE_MIN = 600
#: below ``CASE_MIN`` intervals the band widens to this many binomial standard errors of
#: 0.95 (a chance failure about once in 16000 checks; at 200 intervals, 88.8% to 100%:
#: with a value published once per release, only a clear miscalibration fails)
SLACK_SE = 4.0
#: the case of a share whose truth is 0, the end of its range [0, 1]: its interval is
#: clipped there, so only the upper side can miss and coverage is about 97.5%, not 95%
AT_ZERO = "truth 0 (clipped end)"
#: the case of a share whose truth is within its interval's half-width of 0 or 1: clipped
#: in most releases, so its coverage lies between 95% and 97.5% (one side rarely misses)
NEAR_END = "truth near clipped end"
#: the cases judged apart from the band: coverage at least 95% less 4 standard errors, at
#: most 97.5% plus 4 standard errors
AT_END = (AT_ZERO, NEAR_END)


def half_width(v: PublishedValue) -> float:
    """The half-width of a share's interval on a side it was not clipped (the larger)."""
    assert v.lower is not None and v.upper is not None
    sides = [v.upper - v.value] if v.upper < 1.0 else []
    sides += [v.value - v.lower] if v.lower > 0.0 else []
    return max(sides, default=1.0)


def key_of(kind: str, v: PublishedValue) -> Key:
    return (kind, v.metric, v.column, tuple(sorted(v.group.items())))


# --------------------------------------------------------------------------- derived files


def blank_out(df: pl.DataFrame, column: str, share: float, seed: int) -> pl.DataFrame:
    """``df`` with ``share`` of ``column``'s values set to null, chosen with a fixed seed (the
    rows are picked in the test, not in the code under test)."""
    rng = random.Random(seed)
    picked = set(rng.sample(range(df.height), round(share * df.height)))
    blank = pl.Series([i in picked for i in range(df.height)])
    return df.with_columns(pl.when(blank).then(None).otherwise(pl.col(column)).alias(column))


def bound_at_quantile(series: pl.Series, q: float) -> float:
    """A round public bound near the ``q`` quantile of ``series``: about 1-q of its values are
    above it (and clamped to it)."""
    value = float(series.drop_nulls().quantile(q, "nearest"))  # type: ignore[arg-type]
    digits = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 0
    return round(value, digits)


# --------------------------------------------------------------------------- the truth


def _values(df: pl.DataFrame, contract: Contract, m: str) -> tuple[pl.Expr, pl.Expr]:
    """(clamped value, null where it counts as missing; 1 where it counts as a value)."""
    col = contract.columns[m]
    assert col.bounds is not None
    lo, hi = col.bounds
    raw = pl.col(m).cast(pl.Float64, strict=False).fill_nan(None)
    if col.missing is Missing.FILL:
        raw = raw.fill_null(col.fill)
    value = raw.clip(lo, hi)
    counted = value.is_not_null() if col.missing is Missing.ALLOW else pl.lit(True)
    return value, counted.cast(pl.Int64)


def _moments(df: pl.DataFrame, contract: Contract, m: str, by: list[str]) -> pl.DataFrame:
    value, counted = _values(df, contract, m)
    aggs = [pl.len().alias("rows"), counted.sum().alias("n"), value.sum().alias("s")]
    out = df.group_by(by).agg(aggs) if by else df.select(aggs)
    return out.with_columns((pl.col("s") / pl.col("n")).alias("mean"))


def _group(row: dict[str, Any], by: str) -> tuple[tuple[str, str], ...]:
    return ((by, str(row[by])),)


def _check_no_truncation(df: pl.DataFrame, contract: Contract) -> None:
    if contract.privacy_unit is None:
        return
    most = int(df.group_by(contract.privacy_unit).len()["len"].max())  # type: ignore[arg-type]
    assert most <= contract.max_rows_per_unit, (
        f"a person has {most} rows, more than max_rows_per_unit: truncation would change the "
        "quantity as defined between releases"
    )


def truths(df: pl.DataFrame, contract: Contract) -> dict[Key, float]:
    """Every published value's quantity as defined, computed without noise."""
    _check_no_truncation(df, contract)
    out: dict[Key, float] = {}
    measures = [m for m in contract.measures]
    unit = contract.privacy_unit
    for a in contract.analyses:
        if isinstance(a, SummaryAnalysis):
            out[("summary", "count", None, ())] = df.height
            if unit is not None:
                out[("summary", "units", None, ())] = df[unit].n_unique()
            for m in a.measures if a.measures is not None else measures:
                [row] = _moments(df, contract, m, []).iter_rows(named=True)
                if contract.columns[m].missing is Missing.ALLOW:
                    out[("summary", "present", m, ())] = row["n"]
                out[("summary", "sum", m, ())] = row["s"]
                out[("summary", "mean", m, ())] = row["mean"]
        elif isinstance(a, ComparisonAnalysis):
            m, by = a.measure, a.by
            keys = contract.columns[by].keys
            assert keys is not None, "calibration comparisons use public keys"
            sub = df.filter(pl.col(by).cast(pl.String).is_in(keys))
            means: dict[str, float] = {}
            for row in _moments(sub, contract, m, [by]).iter_rows(named=True):
                g = _group(row, by)
                out[("comparison", "count", m, g)] = row["rows"]
                if contract.columns[m].missing is Missing.ALLOW:
                    out[("comparison", "present", m, g)] = row["n"]
                out[("comparison", "sum", m, g)] = row["s"]
                if row["n"]:
                    out[("comparison", "mean", m, g)] = row["mean"]
                    means[str(row[by])] = row["mean"]
            for x in means:
                for y in means:
                    if x == y:
                        continue
                    g = tuple(sorted({by: x, f"{by}_vs": y}.items()))
                    if x < y:
                        out[("comparison", "difference", m, g)] = means[x] - means[y]
                    if means[y] != 0:
                        out[("comparison", "ratio", m, g)] = means[x] / means[y]
        elif isinstance(a, TrendAnalysis):
            t = a.time
            col = contract.columns[t]
            periods = public_periods(col)
            assert periods is not None, "calibration trends use a public period range"
            integer = is_integer_time(col, df.schema[t])
            with_p = df.with_columns(period_ordinal_expr(t, col, df.schema[t]).alias("__p"))
            with_p = with_p.filter(pl.col("__p").is_in(periods))
            counts = dict(with_p.group_by("__p").len().iter_rows())
            for p in periods:
                out[("trend", "count", None, ((t, period_label(p, col.granularity, integer)),))] = counts.get(
                    p, 0
                )
            for m in a.measures:
                for row in _moments(with_p, contract, m, ["__p"]).iter_rows(named=True):
                    lab = period_label(row["__p"], col.granularity, integer)
                    if row["n"]:
                        out[("trend", "mean", m, ((t, lab),))] = row["mean"]
        elif isinstance(a, CorrelationAnalysis):
            ms = list(dict.fromkeys(a.measures))
            vals = [_values(df, contract, m) for m in ms]
            complete = df.select([v.alias(m) for m, (v, _) in zip(ms, vals, strict=True)])
            complete = complete.drop_nulls()
            for i, x in enumerate(ms):
                for y in ms[i + 1 :]:
                    r = complete.select(pl.corr(x, y)).item()
                    out[("correlation", "pearson_r", x, (("with", y),))] = float(r)
        elif isinstance(a, DistributionAnalysis):
            m = a.measure
            lo, hi = contract.columns[m].bounds  # type: ignore[misc]
            mid = (lo + hi) / 2
            edges = a.bins or [lo + (hi - lo) * i / 10 for i in range(11)]
            value, _ = _values(df, contract, m)
            x = df.select(((value - mid) + mid).alias("x"))["x"].drop_nulls()
            for i in range(len(edges) - 1):
                last = i == len(edges) - 2
                label = f"[{edges[i]:g}, {edges[i + 1]:g}{']' if last else ')'}"
                inside = (x >= edges[i]) & ((x <= edges[i + 1]) if last else (x < edges[i + 1]))
                out[("distribution", "histogram", m, (("bin", label),))] = int(inside.sum())
    out.update(_quality_truths(df, contract))
    return out


def _quality_truths(df: pl.DataFrame, contract: Contract) -> dict[Key, float]:
    """The quality release's shares (measures used by any analysis)."""
    out: dict[Key, float] = {}
    used: set[str] = set()
    for a in contract.analyses:
        if isinstance(a, SummaryAnalysis):
            used |= set(a.measures if a.measures is not None else contract.measures)
        elif isinstance(a, ComparisonAnalysis | DistributionAnalysis):
            used.add(a.measure)
        elif isinstance(a, TrendAnalysis | CorrelationAnalysis):
            used |= set(a.measures)
    unit = contract.privacy_unit
    for m in used:
        col = contract.columns[m]
        lo, hi = col.bounds  # type: ignore[misc]
        raw = pl.col(m).cast(pl.Float64, strict=False).fill_nan(None)
        flags = df.select(
            raw.is_not_null().cast(pl.Float64).alias("present"),
            (raw < lo).fill_null(False).cast(pl.Float64).alias("below"),
            (raw > hi).fill_null(False).cast(pl.Float64).alias("above"),
            *([pl.col(unit)] if unit else []),
        )
        if unit is not None:  # each person counts once: their share of rows
            flags = flags.group_by(unit).agg(pl.col("present", "below", "above").mean())
        total = flags.height
        sums = flags.select(pl.col("present", "below", "above").sum()).row(0, named=True)
        wants_present = col.missing in (Missing.ALLOW, Missing.FILL)
        if wants_present:
            out[("quality", "missing_share", m, ())] = 1 - sums["present"] / total
        base = sums["present"] if wants_present else total
        out[("quality", "clamped_low_share", m, ())] = sums["below"] / base
        out[("quality", "clamped_high_share", m, ())] = sums["above"] / base
    if unit is not None:  # people over the bound, and rows left out (at most k per person)
        k = contract.max_rows_per_unit
        rows = df.group_by(unit).len()["len"].cast(pl.Int64)
        excess = float((rows - k).clip(0, k).sum())
        kept = float(rows.clip(0, k).sum())
        out[("quality", "over_bound_share", None, ())] = float((rows > k).mean())  # type: ignore[arg-type]
        out[("quality", "truncated_share", None, ())] = excess / (kept + excess)
    return out


# --------------------------------------------------------------------------- coverage


@dataclass
class Coverage:
    """Hits per (kind, case label) over the repeats; families per release for contrasts."""

    repeats: int = 0
    seconds: float = 0.0
    hits: dict[tuple[str, str], list[bool]] = field(default_factory=lambda: defaultdict(list))
    published: dict[Key, int] = field(default_factory=lambda: defaultdict(int))

    def rate(self, kind: str, case: str) -> tuple[int, float]:
        seen = self.hits.get((kind, case), [])
        return len(seen), (sum(seen) / len(seen) if seen else float("nan"))

    def table(self, dataset: str) -> list[tuple[str, str, str, int, int, float]]:
        """(kind, dataset, case, repeats, intervals, coverage) rows, pooled "all" rows too."""
        pooled: dict[str, list[bool]] = defaultdict(list)
        for (kind, case), seen in self.hits.items():
            if case not in AT_END:
                pooled[kind] += seen
        rows = [
            (kind, dataset, case, self.repeats, len(seen), sum(seen) / len(seen))
            for (kind, case), seen in self.hits.items()
        ]
        rows += [
            (kind, dataset, "all", self.repeats, len(seen), sum(seen) / len(seen))
            for kind, seen in pooled.items()
        ]
        return sorted(rows)

    def assert_calibrated(self, kinds: Sequence[str], band: tuple[float, float] = BAND) -> None:
        """Per kind, pooled over cases, and per case: coverage inside ``band`` with at least
        ``CASE_MIN`` intervals; with fewer (a group published in few releases, a value
        published once per release), inside the band or ``SLACK_SE`` binomial standard
        errors of 0.95, whichever is wider. A share
        at or near the end of [0, 1] (``AT_END``) is judged on its own: coverage at least
        95% and at most 97.5%, each less or plus 4 standard errors."""
        failures = []
        for (kind, case), hs in self.hits.items():
            if case not in AT_END:
                continue
            r, n = sum(hs) / len(hs), len(hs)
            if not 0.95 - 4 * math.sqrt(0.95 * 0.05 / n) <= r <= 0.975 + 4 * math.sqrt(
                0.975 * 0.025 / n
            ):
                failures.append(f"{kind} ({case}): coverage {r:.4f} over {n}")
        for kind in kinds:
            ends = sum(len(hs) for (k, c), hs in self.hits.items() if k == kind and c in AT_END)
            seen = [
                h for (k, c), hs in self.hits.items() if k == kind and c not in AT_END for h in hs
            ]
            if len(seen) + ends < self.repeats:
                failures.append(
                    f"{kind}: only {len(seen) + ends} intervals in {self.repeats} releases"
                )
                continue
            if not seen:  # every interval of the kind is at an end: judged above
                continue
            if not _within(seen, band):
                failures.append(
                    f"{kind} (all cases): coverage {sum(seen) / len(seen):.4f} over {len(seen)}"
                )
            for (k, case), hs in self.hits.items():
                if k == kind and case not in AT_END and not _within(hs, band):
                    failures.append(f"{kind} ({case}): coverage {sum(hs) / len(hs):.4f} over {len(hs)}")
        assert not failures, "miscalibrated: " + "; ".join(failures)


def _within(hits: Sequence[bool], band: tuple[float, float]) -> bool:
    """Coverage inside ``band`` with at least ``CASE_MIN`` intervals; with fewer, inside the
    band or ``SLACK_SE`` binomial standard errors of 0.95, whichever is wider."""
    r, n = sum(hits) / len(hits), len(hits)
    if n >= CASE_MIN:
        return band[0] <= r <= band[1]
    slack = SLACK_SE * math.sqrt(0.95 * 0.05 / n)
    return min(band[0], 0.95 - slack) <= r <= max(band[1], 0.95 + slack)


def measure_coverage(
    df: pl.DataFrame,
    contract: Contract,
    repeats: int,
    case_of: Any,
    loss: Loss | None = None,
) -> Coverage:
    """Release ``df`` ``repeats`` times (one resolved plan) and count hits.

    ``case_of(key)`` names the case a value belongs to (e.g. "overall", "group < 50 rows")
    or None to leave it out. Contrasts are also counted as families per release and case:
    kinds ``difference family``, ``ratio family`` and ``contrast family`` (both together).
    """
    truth = truths(df, contract)
    if loss is None:  # pure ε: the whole δ cap (the calibration caps are never reached)
        b = contract.budget
        loss = PrivacyLoss(b.epsilon_per_release, b.delta) if b.accounting == "pure" else b.release_loss
    plan = plan_analyses(df.lazy(), contract, loss)
    cov = Coverage(repeats)
    shares: dict[Key, list[tuple[str, bool, float]]] = defaultdict(list)
    start = time.perf_counter()
    try:
        for _ in range(repeats):
            rs = plan.run()
            assert fits(rs.loss, loss)
            for release in rs.releases:
                family: dict[tuple[str, str], bool] = {}
                for v in release.values:
                    key = key_of(release.analysis, v)
                    if key not in truth:
                        continue
                    case = case_of(key)
                    if case is None:
                        continue
                    assert v.lower is not None and v.upper is not None, key
                    assert v.lower <= v.value <= v.upper, (key, v)
                    hit = v.lower <= truth[key] <= v.upper
                    if key[0] == "quality" and truth[key] == 0:
                        case = AT_ZERO  # nothing to clamp or missing: only one side can miss
                    elif key[0] == "quality":  # its case is known once every release is in
                        shares[key].append((case, hit, half_width(v)))
                        cov.published[key] += 1
                        continue
                    cov.hits[(v.metric, case)].append(hit)
                    cov.published[key] += 1
                    if v.metric in CONTRASTS:
                        for fam in (f"{v.metric} family", "contrast family"):
                            family[(fam, case)] = family.get((fam, case), True) and hit
                for k, ok in family.items():
                    cov.hits[k].append(ok)
    finally:
        plan.close()
    cov.seconds = time.perf_counter() - start
    for key, seen in shares.items():
        # near an end if closer to it than its typical half-width: a case fixed per value,
        # not per release (a release's own half-width would select on its noise)
        widths = sorted(w for _, _, w in seen)
        near = min(truth[key], 1 - truth[key]) < widths[len(widths) // 2]
        for case, hit, _ in seen:
            cov.hits[(key[1], NEAR_END if near else case)].append(hit)
    return cov
