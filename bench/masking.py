"""Benchmark: load -> validate -> mask -> write masked Parquet, against plain CSV -> Parquet.

    .venv/bin/python bench/masking.py [--rows 10000000] [--regenerate]

Generates a 10-million-row employee CSV under bench/out/ (gitignored; numpy randomness is
fine here, never in privacy/), then runs each stage in its own child process so that peak
memory (ru_maxrss of that process) is measured per stage:

* baseline:  ``pl.scan_csv(file).sink_parquet(out)`` (plain polars, schema inferred)
* validate:  ``load_file`` -> ``conform`` -> ``validate`` (one streaming pre-pass), then the
  k-anonymity class table (``kept_classes``, one more streaming pass, a few rows)
* mask:      ``load_file`` -> ``conform`` -> ``mask`` (HMAC pseudonyms, date truncation,
  k=5 suppression over team x finish month against the class table) -> ``sink_parquet``

The pipeline's time is validate + mask; its peak memory is the larger of the two. Both are
printed as ratios to the baseline (targets: <= 3x time, <= 1.5x memory).
"""

from __future__ import annotations

import argparse
import json
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


def stage(name: str, csv: Path) -> dict[str, float]:
    """Run one stage in this process; return its time and peak memory."""
    import resource

    import polars as pl

    t0 = time.perf_counter()
    extra: dict[str, float] = {}
    if name == "baseline":
        pl.scan_csv(csv).sink_parquet(OUT / "baseline.parquet")
    else:
        from flows.loading import load_file
        from privacy.masking import kept_classes, mask
        from privacy.validation import conform, validate

        contract = _contract()
        raw = load_file(csv)
        conformed = conform(raw, contract)  # type: ignore[arg-type]
        if name == "validate":
            report = validate(raw, conformed, contract)  # type: ignore[arg-type]
            extra["rows"] = report.rows
            extra["ok"] = float(report.ok)
            # the classes that survive k-anonymity: a small table, so masking scans once
            keep = kept_classes(conformed, contract).collect(engine="streaming")  # type: ignore[arg-type]
            keep.write_parquet(OUT / "kept_classes.parquet")
            extra["classes"] = keep.height
        else:
            keep = pl.read_parquet(OUT / "kept_classes.parquet")
            masked = mask(conformed, contract, KEY, keep_classes=keep)  # type: ignore[arg-type]
            masked.sink_parquet(OUT / "masked.parquet")
            extra["rows_out"] = (
                pl.scan_parquet(OUT / "masked.parquet").select(pl.len()).collect().item()
            )
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, **extra}


def run_child(name: str, csv: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--stage", name, "--csv", str(csv)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
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
    base = run_child("baseline", csv)
    val = run_child("validate", csv)
    msk = run_child("mask", csv)
    pipe_s = val["seconds"] + msk["seconds"]
    pipe_mb = max(val["peak_mb"], msk["peak_mb"])
    print(f"{'stage':<28}{'time s':>9}{'peak MB':>10}")
    print(f"{'baseline CSV -> Parquet':<28}{base['seconds']:>9.2f}{base['peak_mb']:>10.0f}")
    print(f"{'load+validate':<28}{val['seconds']:>9.2f}{val['peak_mb']:>10.0f}")
    print(f"{'load+conform+mask+write':<28}{msk['seconds']:>9.2f}{msk['peak_mb']:>10.0f}")
    print(f"{'pipeline (sum / max)':<28}{pipe_s:>9.2f}{pipe_mb:>10.0f}")
    print(
        f"rows validated: {val['rows']:.0f} (ok={bool(val['ok'])}); rows after masking: "
        f"{msk['rows_out']:.0f}"
    )
    t_ratio, m_ratio = pipe_s / base["seconds"], pipe_mb / base["peak_mb"]
    print(
        f"time ratio {t_ratio:.2f}x (target <= 3x); peak memory ratio {m_ratio:.2f}x "
        "(target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
