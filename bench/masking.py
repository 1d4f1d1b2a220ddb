"""Benchmark: load -> validate -> mask -> write masked Parquet, against plain CSV -> Parquet.

    .venv/bin/python bench/masking.py [--rows 10000000] [--reps 3] [--regenerate]

Generates a 10-million-row employee CSV under bench/out/ (gitignored; numpy randomness is
fine here, never in privacy/), then runs each stage in its own child process so that peak
memory (ru_maxrss of that process) is measured per stage:

* baseline:  ``pl.scan_csv(file).sink_parquet(out)`` (plain polars, schema inferred)

The two pipeline stages below are the flow's own functions (``flows.stages``), so this
measures the path a real run takes.

* validate:  ``load_file`` -> ``conform`` -> one streaming pass (``pl.collect_all``) that
  computes ``validation_counts`` and stages the conformed columns masking reads
  (``mask_columns``) in an Arrow IPC file, so the CSV is parsed and conformed once;
  then ``validation_report`` turns the counts into the report (a valid file reads no
  more rows)
* mask:      the k-anonymity class table (``kept_classes``) from the staged copy, then
  ``mask`` (HMAC pseudonyms, date truncation, k=5 suppression over team x finish month)
  -> ``sink_parquet(**MASKED_PARQUET)``, then the achieved k of the output (as a run does)

The pipeline's time is validate + mask; its peak memory is the larger of the two. The
machine is shared, so each repetition runs baseline, validate, mask back to back and the
ratios of every repetition are printed with their median (targets: <= 3x time,
<= 1.5x memory). CPU seconds (user + system) are printed too: they move less than wall
time when other processes compete for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
KEY = b"bench-pseudonym-key"


def generate(path: Path, rows: int) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    first = ["ada", "bob", "chen", "dana", "eli", "fatima", "goran", "hana", "ivan", "jo"]
    last = ["smith", "garcia", "ito", "kowalski", "nguyen", "okafor", "rossi", "silva"]
    teams = ["Atlas", "Borealis", "Cygnus", "Draco"]
    emp = rng.integers(0, rows // 10 + 1, rows)
    df = pl.DataFrame(
        {
            "emp": emp,
            "fi": rng.integers(0, len(first), rows),
            "la": rng.integers(0, len(last), rows),
            "team": rng.integers(0, len(teams), rows),
            "project_completion_days": np.round(rng.gamma(2.0, 6.0, rows), 2),
            "efficiency": np.round(rng.normal(1.0, 0.3, rows), 3),
            "day": rng.integers(0, 3 * 365, rows),
        }
    )

    def pick(col: str, names: list[str]) -> pl.Expr:
        return pl.col(col).replace_strict(list(range(len(names))), names, return_dtype=pl.String)

    df = df.select(
        pl.format("E{}", pl.col("emp").cast(pl.String).str.zfill(7)).alias("employee_id"),
        pl.concat_str([pick("fi", first), pick("la", last)], separator=" ").alias("name"),
        pl.format("e{}@example.org", pl.col("emp")).alias("email"),
        pick("team", teams).alias("team"),
        "project_completion_days",
        "efficiency",
        (pl.date(2022, 1, 1) + pl.duration(days=pl.col("day"))).alias("finish_date"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_csv(path)


def _contract() -> object:
    from privacy.contract import Contract, load_contract

    data = load_contract(ROOT / "contracts" / "employees.yaml").model_dump(mode="json")
    data["columns"]["finish_date"]["generalize"] = {"kind": "date", "to": "month"}
    data["anonymity"] = {"k": 5, "quasi_identifiers": ["team", "finish_date"]}
    return Contract.model_validate(data)


STAGED = OUT / "conformed.arrow"


def stage(name: str, csv: Path) -> dict[str, float]:
    """Run one stage in this process; return its time, CPU time and peak memory."""
    import resource

    import polars as pl

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    extra: dict[str, float] = {}
    if name == "baseline":
        pl.scan_csv(csv).sink_parquet(OUT / "baseline.parquet")
    elif name == "validate":
        from flows.loading import load_file
        from flows.stages import validate_and_stage

        report = validate_and_stage(load_file(csv), _contract(), STAGED)  # type: ignore[arg-type]
        extra["rows"] = report.rows
        extra["ok"] = float(report.ok)
    else:
        from flows.stages import mask_staged
        from privacy.reports import achieved_k

        contract = _contract()
        rows_in = pl.scan_ipc(STAGED).select(pl.len()).collect().item()
        stats = mask_staged(STAGED, contract, KEY, OUT / "masked.parquet", rows_in)  # type: ignore[arg-type]
        qis = contract.quasi_identifiers  # type: ignore[attr-defined]
        if qis:
            extra["achieved_k"] = achieved_k(pl.scan_parquet(OUT / "masked.parquet"), qis) or 0
        extra["rows_out"] = stats.rows_out
        STAGED.unlink()
    seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu": cpu_s, "peak_mb": peak_mb, **extra}


def run_child(name: str, csv: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--stage", name, "--csv", str(csv)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(stage(args.stage, args.csv)))
        return

    csv = OUT / f"employees_{args.rows}.csv"
    if args.regenerate or not csv.exists():
        t0 = time.perf_counter()
        generate(csv, args.rows)
        print(
            f"generated {csv.name}: {args.rows} rows, {csv.stat().st_size / 1e6:.0f} MB "
            f"in {time.perf_counter() - t0:.1f} s"
        )
    head = f"{'rep':<5}{'stage':<26}{'time s':>8}{'cpu s':>8}{'peak MB':>9}  load 1/5/15 min"
    print(head)
    t_ratios, c_ratios, m_ratios = [], [], []
    for rep in range(1, args.reps + 1):
        runs = {}
        for name in ("baseline", "validate", "mask"):
            runs[name] = run_child(name, csv)
            r = runs[name]
            label = {
                "baseline": "baseline CSV -> Parquet",
                "validate": "load+conform+validate",
                "mask": "classes+mask+write",
            }[name]
            print(
                f"{rep:<5}{label:<26}{r['seconds']:>8.2f}{r['cpu']:>8.2f}"
                f"{r['peak_mb']:>9.0f}  {_load()}",
                flush=True,
            )
        base, val, msk = runs["baseline"], runs["validate"], runs["mask"]
        pipe_s, pipe_cpu = val["seconds"] + msk["seconds"], val["cpu"] + msk["cpu"]
        pipe_mb = max(val["peak_mb"], msk["peak_mb"])
        print(f"{rep:<5}{'pipeline (sum / max)':<26}{pipe_s:>8.2f}{pipe_cpu:>8.2f}{pipe_mb:>9.0f}")
        t_ratios.append(pipe_s / base["seconds"])
        c_ratios.append(pipe_cpu / base["cpu"])
        m_ratios.append(pipe_mb / base["peak_mb"])
        print(
            f"{rep:<5}ratios: time {t_ratios[-1]:.2f}x, cpu {c_ratios[-1]:.2f}x, "
            f"peak memory {m_ratios[-1]:.2f}x; rows validated {val['rows']:.0f} "
            f"(ok={bool(val['ok'])}), rows after masking {msk['rows_out']:.0f}",
            flush=True,
        )

    def fmt(xs: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in xs)

    print(
        f"median time ratio {statistics.median(t_ratios):.2f}x (target <= 3x; runs "
        f"{fmt(t_ratios)}); median cpu ratio {statistics.median(c_ratios):.2f}x (runs "
        f"{fmt(c_ratios)}); median peak memory ratio {statistics.median(m_ratios):.2f}x "
        f"(target <= 1.5x; runs {fmt(m_ratios)})"
    )


if __name__ == "__main__":
    main()
