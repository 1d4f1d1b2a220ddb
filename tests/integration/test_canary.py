"""Invariant 2: nothing derived from raw rows leaves the pipeline but DP releases, counts-only
reports and masked Parquet.

Unique canary strings are planted in the identifier columns of a file; after a real run
against the real Prefect server none of them appears anywhere: not in the aggregate store, the
reports, the logs, the Prefect home folder (the server's database included), nor in clear in
the masked Parquet. A rejected file is checked the same way, except for its quarantined copy,
which is the raw file kept intact on purpose.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from flows.demo import employee_frame
from tests.conftest import PREFECT_TEST_HOME

pytestmark = pytest.mark.integration


def _canaries(n: int) -> list[str]:
    return [f"CANARY{uuid.uuid4().hex[:16].upper()}" for _ in range(n)]


def _plant(frame: pl.DataFrame, ids: list[str], names: list[str], mails: list[str]) -> pl.DataFrame:
    k = len(ids)
    idx = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(idx < k)
        .then(pl.Series(ids + [""] * (frame.height - k)))
        .otherwise(pl.col("employee_id"))
        .alias("employee_id"),
        pl.when(idx < k)
        .then(pl.Series(names + [""] * (frame.height - k)))
        .otherwise(pl.col("name"))
        .alias("name"),
        pl.when(idx < k)
        .then(pl.Series(mails + [""] * (frame.height - k)))
        .otherwise(pl.col("email"))
        .alias("email"),
    )


def _flush_prefect_logs() -> None:
    import logging

    from prefect.logging.handlers import APILogHandler

    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs"):
        for h in logging.getLogger(name).handlers:
            if isinstance(h, APILogHandler):
                h.flush()
    time.sleep(2)


def _files(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if p.is_file()]


def _find(
    canaries: list[str], files: list[Path], skip: set[Path] = frozenset()
) -> list[tuple[str, str]]:
    hits = []
    needles = [c.encode() for c in canaries] + [c.lower().encode() for c in canaries]
    for f in files:
        if f in skip:
            continue
        data = f.read_bytes()
        for n in needles:
            if n in data:
                hits.append((str(f), n.decode()))
    return hits


def test_canaries_never_leave_the_pipeline(
    pa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids, names, mails = _canaries(12), _canaries(12), _canaries(12)
    mails = [m.lower() + "@example.com" for m in mails]
    frame = _plant(employee_frame(rows=600, employees=120, seed=21), ids, names, mails)
    src = tmp_path / "canary.csv"
    frame.write_csv(src)
    assert main(["process", str(src), "--dataset", "employees"]) == 0
    out, err = capsys.readouterr()
    _flush_prefect_logs()
    everything = ids + names + [m.split("@")[0] for m in mails]
    assert len(_find(everything, [src])) >= len(everything), (
        "positive control: the search finds them"
    )
    assert not [c for c in everything if c in out + err]

    masked = list((pa.objects_dir / "masked").rglob("*.parquet"))
    assert masked, "the run wrote masked Parquet"
    skip = set(masked)  # compressed: checked by reading it below
    hits = _find(everything, _files(pa.state, Path(PREFECT_TEST_HOME)), skip)
    assert not hits, f"canary values found outside the pipeline: {hits[:5]}"
    secret = pa.pseudonym_key.get_secret_value()
    assert not _find([secret], _files(pa.state, Path(PREFECT_TEST_HOME))), "the pseudonym key leaked"
    for m in masked:
        text = pl.read_parquet(m).select(pl.all().cast(pl.String)).to_pandas().to_csv()
        assert not [c for c in everything if c in text or c.lower() in text]
    # the planted rows did make it through, pseudonymized (so the test could have failed)
    assert pl.read_parquet(masked[0]).height == frame.height
    assert any(p.suffix == ".db" for p in Path(PREFECT_TEST_HOME).rglob("*")), (
        "the server DB was searched"
    )


def test_canaries_in_a_rejected_file_stay_in_quarantine(pa, tmp_path: Path, capsys) -> None:
    ids, names = _canaries(5), _canaries(5)
    frame = _plant(
        employee_frame(rows=200, employees=40, seed=22),
        ids,
        names,
        [f"x{i}@e.com" for i in range(5)],
    )
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 5)
        .then(pl.Series(_canaries(5) + [""] * (frame.height - 5)))
        .otherwise(pl.col("efficiency").cast(pl.String))
        .alias("efficiency")
    )
    bad_values = frame["efficiency"][:5].to_list()
    src = tmp_path / "canary_bad.csv"
    frame.write_csv(src)
    # by default the five unreadable values become nulls: the file publishes and the
    # canaries are nowhere, the masked file included
    assert main(["process", str(src), "--dataset", "employees"]) == 0
    out, err = capsys.readouterr()
    _flush_prefect_logs()
    assert not [c for c in bad_values if c in out + err]
    masked = list((pa.objects_dir / "masked" / "employees").glob("canary_bad-*.parquet"))
    assert masked
    text = pl.read_parquet(masked[0]).select(pl.all().cast(pl.String)).to_pandas().to_csv()
    assert not [c for c in bad_values if c in text]
    assert not _find(bad_values, _files(pa.state, Path(PREFECT_TEST_HOME)), set(masked))
    # a contract that opts in to whole-file rejection quarantines the file intact
    contract = pa.contracts_dir / "employees.yaml"
    contract.write_text(contract.read_text() + "on_bad_value: reject\n")
    src = tmp_path / "canary_rejected.csv"
    frame.write_csv(src)
    assert main(["process", str(src), "--dataset", "employees"]) == 2
    out, err = capsys.readouterr()
    _flush_prefect_logs()
    everything = ids + names + bad_values
    assert not [c for c in everything if c in out + err]
    quarantined = pa.objects_dir / "quarantine" / "employees" / "canary_rejected.csv"
    assert quarantined.exists()
    hits = _find(everything, _files(pa.state, Path(PREFECT_TEST_HOME)), {quarantined, *masked})
    assert not hits, f"canary values found outside the quarantined file: {hits[:5]}"
