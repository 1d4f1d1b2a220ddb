"""Benchmark: the employee contract's full DP release set versus plain polars.

    .venv/bin/python bench/dp_release.py [--sizes 1000000 10000000] [--small 1000]

For each size, a masked employee frame (SHA-256 hex pseudonyms, 5 rows per employee,
four teams, six months of 2025, inside the contract's public period range) is generated in
a child process, then either released through ``analytics.analyses.release_analyses``
(warm: scales already calibrated, the pipeline's steady state) or aggregated non-privately
by plain polars (the same counts, sums, means, histogram, quantiles, group-bys and
correlation sums), or computed exactly after the same per-person truncation (the floor:
each person's rows cut at random to ``max_rows_per_unit`` once, then the aggregates). Each
child reports wall time and peak RSS above its post-generation baseline; the parent prints
them and the ratios of the release to the floor. Finally it times one release of a small
file: cold (empty calibration cache) and warm.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    # current RSS from /proc (Linux); peak from getrusage
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_frame(n: int):
    import polars as pl
    import polars_hash as plh

    employees = max(n // 5, 1)
    idx = pl.int_range(n, eager=True)
    df = pl.DataFrame({"i": idx}).with_columns(
        ((pl.col("i") * 2654435761) % employees).cast(pl.String).alias("e"),
        ((pl.col("i") * 40503) % 1000 / 1000).alias("u"),
        ((pl.col("i") * 69069) % 997 / 997).alias("v"),
    )
    teams = pl.Series(["Atlas", "Borealis", "Cygnus", "Draco"])
    df = df.select(
        plh.col("e").chash.sha2_256().alias("employee_id"),
        pl.col("i").mod(4).replace_strict(pl.int_range(4, eager=True), teams).alias("team"),
        (pl.col("u") * 40 + 1).alias("project_completion_days"),
        (pl.col("v") * 1.6 + 0.2).alias("efficiency"),
        (pl.date(2025, 1, 1) + pl.duration(days=pl.col("i") % 180)).alias("finish_date"),
    )
    return df


def contract_for(n: int):
    from privacy.contract import load_contract

    c = load_contract(ROOT / "contracts" / "employees.yaml")
    return c.model_copy(update={"max_rows_per_file": max(n, 1000)})


def truncated(df, contract):
    """Each person's rows cut to ``max_rows_per_unit`` at random, once (a window over the
    person): the per-person truncation a DP release applies, done exactly."""
    import polars as pl

    k = contract.max_rows_per_unit
    keep = pl.int_range(pl.len()).shuffle(seed=0).over("employee_id") < k
    return df.lazy().filter(keep).collect()


def plain_polars(df, contract, truncate: bool = False) -> None:
    """The same aggregates without privacy; ``truncate``: after the same per-person
    truncation (the floor any correct person-level release has to beat)."""
    import polars as pl

    m1, m2 = "project_completion_days", "efficiency"
    lf = (truncated(df, contract) if truncate else df).lazy()
    edges = [0, 5, 10, 15, 20, 30, 45, 60]
    outs = [
        lf.select(
            pl.len(),
            pl.col("employee_id").n_unique(),
            pl.col(m1).sum(),
            pl.col(m2).sum(),
            pl.col(m1).quantile(0.25).alias("q1"),
            pl.col(m1).median().alias("q2"),
            pl.col(m1).quantile(0.75).alias("q3"),
            (pl.col(m1) * pl.col(m2)).sum().alias("xy"),
            (pl.col(m1) ** 2).sum().alias("xx"),
            (pl.col(m2) ** 2).sum().alias("yy"),
        ),
        lf.group_by(pl.col(m1).cut(edges[1:-1])).len(),
        lf.group_by("team").agg(pl.len(), pl.col(m2).sum().alias("s"), pl.col(m2).mean()),
        lf.group_by("team").agg(pl.len(), pl.col(m1).sum().alias("s"), pl.col(m1).mean()),
        lf.group_by(pl.col("finish_date").dt.strftime("%Y-%m")).agg(pl.len(), pl.col(m1).mean()),
    ]
    pl.collect_all(outs)


def child(mode: str, n: int) -> dict[str, float]:
    from analytics.analyses import release_analyses
    from privacy.budget import PrivacyLoss
    from privacy.release import MemoryCalibrationCache

    df = make_frame(n)
    contract = contract_for(n)
    loss = PrivacyLoss(contract.budget.epsilon_per_release, contract.budget.release_delta)
    cache = MemoryCalibrationCache()
    # calibrate on a tiny file of the same contract, as the pipeline's cache would have done
    release_analyses(make_frame(1000).lazy(), contract, loss, cache=cache)
    base = _rss_mb()
    t0 = time.perf_counter()
    if mode == "dp":
        rs = release_analyses(df.lazy(), contract, loss, cache=cache)
        assert rs.loss.fits_within(loss)
    else:
        plain_polars(df, contract, truncate=mode == "floor")
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "peak_mb": max(_peak_mb() - base, 0.0), "rss_base_mb": base}


def small_file(n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    import opendp.prelude as dp

    dp.enable_features("contrib")
    from analytics.analyses import release_analyses
    from privacy.budget import PrivacyLoss
    from privacy.release import MemoryCalibrationCache

    imported = time.perf_counter() - t0
    df = make_frame(n)
    contract = contract_for(n)
    loss = PrivacyLoss(contract.budget.epsilon_per_release, contract.budget.release_delta)
    cache = MemoryCalibrationCache()
    t0 = time.perf_counter()
    release_analyses(df.lazy(), contract, loss, cache=cache)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t0 = time.perf_counter()
        release_analyses(df.lazy(), contract, loss, cache=cache)
        warm.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    plain_polars(df, contract)
    plain = time.perf_counter() - t0
    return {"import_s": imported, "cold_s": cold, "warm_s": min(warm), "plain_s": plain}


def _queries() -> int:
    from analytics.analyses import plan_analyses
    from privacy.budget import PrivacyLoss

    contract = contract_for(1000)
    loss = PrivacyLoss(contract.budget.epsilon_per_release, contract.budget.release_delta)
    plan = plan_analyses(make_frame(1000).lazy(), contract, loss)
    plan.close()
    return len(plan.specs)


def _run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--small-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    if args.small_child:
        print(json.dumps(small_file(args.small_child)))
        return

    print(
        f"DP release set (employees contract: {_queries()} OpenDP measurements, 6 analysis "
        f"kinds) vs plain polars; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("floor: the same aggregates computed exactly after the same per-person truncation "
          "(issue target: dp at most 1.5x the floor in time and in memory)")
    head = (("rows", 12), ("dp s", 8), ("polars s", 9), ("floor s", 8), ("x floor", 8),
            ("dp MB", 8), ("floor MB", 9), ("mem x", 6))
    print(" ".join(f"{h:>{w}}" for h, w in head))
    for n in args.sizes:
        dp_r = _run_child("--child", "dp", str(n))
        pl_r = _run_child("--child", "polars", str(n))
        fl_r = _run_child("--child", "floor", str(n))
        tx = dp_r["seconds"] / max(fl_r["seconds"], 1e-9)
        mx = dp_r["peak_mb"] / max(fl_r["peak_mb"], 1e-9)
        print(
            f"{n:>12,} {dp_r['seconds']:>8.2f} {pl_r['seconds']:>9.2f} {fl_r['seconds']:>8.2f} "
            f"{tx:>8.1f} {dp_r['peak_mb']:>8.0f} {fl_r['peak_mb']:>9.0f} {mx:>6.1f}"
        )
    s = _run_child("--small-child", str(args.small))
    print(
        f"\n{args.small:,}-row file: cold release (calibration included) {s['cold_s']:.3f} s, "
        f"warm (cached scales) {s['warm_s']:.3f} s, plain polars {s['plain_s']:.3f} s; "
        f"one-off import of OpenDP and the engine {s['import_s']:.1f} s"
    )


if __name__ == "__main__":
    main()
