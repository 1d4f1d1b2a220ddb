"""`privacy-analytics process` end to end against a real Prefect server and the local store."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from analytics.store import AggregateStore, ObjectVersion
from flows.cli import main
from flows.demo import write_employee_csv
from tests.integration.conftest import settings_for

pytestmark = pytest.mark.integration


def test_process_publishes_and_minimises(
    pa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_employee_csv(tmp_path / "projects.csv", rows=1000, employees=200)
    assert main(["process", str(src), "--dataset", "employees"]) == 0
    out = capsys.readouterr().out
    assert "published" in out

    landing = pa.objects_dir / "landing" / "employees" / "projects.csv"
    assert not landing.exists(), "the raw file must leave landing/ after a successful run"
    masked = list((pa.objects_dir / "masked" / "employees").glob("*.parquet"))
    assert len(masked) == 1
    frame = pl.read_parquet(masked[0])
    assert "name" not in frame.columns and "email" not in frame.columns
    raw_ids = set(pl.read_csv(src)["employee_id"])
    assert not raw_ids & set(frame["employee_id"]), "identifiers must be pseudonymized"
    report = json.loads(
        next((pa.objects_dir / "masked" / "employees").glob("*.report.json")).read_text()
    )
    assert report["rows_in"] == 1000

    store = AggregateStore(pa.aggregate_store_url)
    from analytics.store import ReadOnlyStore

    ro = ReadOnlyStore(pa.aggregate_store_url)
    [ds] = [d for d in ro.datasets() if d.name == "employees"]
    assert 0 < ds.epsilon_spent <= 1.0 + 1e-9
    runs = ro.runs(limit=5, dataset="employees")
    assert runs and runs[0].status == "completed" and runs[0].rows_in == 1000
    assert ro.latest_values("employees"), "aggregates must be published"
    store.close()


def test_same_object_version_publishes_once(pa, tmp_path: Path) -> None:
    src = write_employee_csv(tmp_path / "dup.csv", rows=300, employees=60, seed=3)
    # keep the raw file so the second run sees the very same object version
    import os

    os.environ["PA_KEEP_RAW"] = "true"
    try:
        assert main(["process", str(src), "--dataset", "employees"]) == 0
        from analytics.store import ReadOnlyStore

        ro = ReadOnlyStore(settings_for({}).aggregate_store_url)
        spent_once = ro.budget("employees").epsilon_spent
        releases_once = len(ro.releases("employees", limit=1000))
        assert main(["process", str(src), "--dataset", "employees"]) == 0
        assert ro.budget("employees").epsilon_spent == pytest.approx(spent_once)
        assert len(ro.releases("employees", limit=1000)) == releases_once
    finally:
        os.environ.pop("PA_KEEP_RAW", None)


@pytest.mark.parametrize(
    ("name", "content", "expect"),
    [
        ("empty.csv", b"", "empty"),
        ("binary.csv", b"\x00\x01\x02PK\x03\x04" * 50, "binary"),
        ("semicolons.csv", b"employee_id;name;email;team\nE1;A;a@x;Atlas\n", "delimiter"),
        ("dupe.csv", b"employee_id,name,name\nE1,A,B\n", "repeats"),
        ("latin.csv", "employee_id,name\nE1,Jos\u00e9\n".encode("latin-1"), "UTF-8"),
    ],
)
def test_bad_input_is_quarantined_intact(
    pa, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, expect: str
) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    assert main(["process", str(src), "--dataset", "employees"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, "the reason is one line"
    assert expect.lower() in err.lower()
    quarantined = pa.objects_dir / "quarantine" / "employees" / name
    assert quarantined.read_bytes() == content, "the file must move intact"
    report = json.loads((quarantined.parent / f"{name}.report.json").read_text())
    assert report["status"] == "rejected" and expect.lower() in report["reason"].lower()
    assert not (pa.objects_dir / "landing" / "employees" / name).exists()


def test_dataset_without_contract_says_how_to_create_one(pa, tmp_path: Path, capsys) -> None:
    src = write_employee_csv(tmp_path / "x.csv", rows=50, employees=10)
    assert main(["process", str(src), "--dataset", "payroll"]) == 2
    err = capsys.readouterr().err
    assert "contract infer" in err and "payroll" in err
    assert (pa.objects_dir / "quarantine" / "payroll" / "x.csv").exists()


def test_one_bad_value_and_one_outside_the_keys_still_publish(pa, tmp_path: Path, capsys) -> None:
    """One unparseable number and one team outside the public keys: the file publishes
    (exit 0); the two cells become null and the operator report counts both."""
    frame = pl.read_csv(write_employee_csv(tmp_path / "ok.csv", rows=10_000, employees=2_000))
    canary, typo = "CANARYVALUE-zq93", "Atlass-CANARY-kk71"
    first = pl.int_range(pl.len()) == 0
    bad = frame.with_columns(
        pl.when(first).then(pl.lit(canary)).otherwise(pl.col("efficiency").cast(pl.String))
        .alias("efficiency"),
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(typo)).otherwise(pl.col("team"))
        .alias("team"),
    )  # fmt: skip
    src = tmp_path / "one_typo.csv"
    bad.write_csv(src)
    assert main(["process", str(src), "--dataset", "employees"]) == 0
    out, err = capsys.readouterr()
    assert "published" in out and canary not in out + err and typo not in out + err
    report = next((pa.objects_dir / "masked" / "employees").glob("one_typo-*.report.json"))
    text = report.read_text()
    assert canary not in text and typo not in text
    rules = {(r["rule"], r["column"]): r["failed_count"] for r in json.loads(text)["validation_rules"]}
    assert rules[("type", "efficiency")] == 1 and rules[("in_keys", "team")] == 1
    from analytics.store import ReadOnlyStore

    [run] = ReadOnlyStore(pa.aggregate_store_url).runs(limit=1, dataset="employees")
    assert run.status == "completed" and run.values_nulled == 2
    assert run.notes and "1 unreadable value in 'efficiency'" in run.notes
    assert "1 value outside the public keys of 'team'" in run.notes
    masked = pl.read_parquet(
        next((pa.objects_dir / "masked" / "employees").glob("one_typo-*.parquet"))
    )
    assert canary not in masked["efficiency"].cast(pl.String).to_list()
    assert typo not in masked["team"].to_list()


def test_the_release_reads_the_rows_suppression_removes(pa, tmp_path: Path) -> None:
    """Suppression shapes only the masked file: with most rows in small quasi-identifier
    classes, the released row count is still about the file's, not the masked file's."""
    contract = (
        "dataset: smallclasses\nrows_are_people: true\n"
        "budget: {epsilon_cap: 10, epsilon_per_release: 1.0}\nanonymity: {k: 5}\n"
        "columns:\n  zone: {role: quasi_identifier, type: string}\n"
        "  x: {role: measure, type: float, bounds: [0, 10]}\nanalyses:\n  - kind: summary\n"
    )
    (pa.contracts_dir / "smallclasses.yaml").write_text(contract)
    zones = [f"z{i // 2}" for i in range(1_000)] + ["big"] * 1_000  # 500 classes of 2 rows
    src = tmp_path / "zones.csv"
    pl.DataFrame({"zone": zones, "x": [1.0] * 2_000}).write_csv(src)
    assert main(["process", str(src), "--dataset", "smallclasses"]) == 0
    masked = next((pa.objects_dir / "masked" / "smallclasses").glob("*.parquet"))
    assert pl.read_parquet(masked).height == 1_000  # the small classes are suppressed there
    from analytics.store import ReadOnlyStore

    values = ReadOnlyStore(pa.aggregate_store_url).latest_values("smallclasses")
    [count] = [v for v in values if v.metric == "count" and not v.group]
    assert count.lower is not None and count.upper is not None and count.upper - count.lower < 100
    assert 1_900 < count.value < 2_100  # all 2,000 rows (noise sd about 2 at ε 0.5)


def test_pinned_terms_refuse_a_changed_contract_until_budget_set(pa, tmp_path: Path, capsys) -> None:
    path = pa.contracts_dir / "employees.yaml"
    first = write_employee_csv(tmp_path / "first.csv", rows=300, employees=60, seed=41)
    second = write_employee_csv(tmp_path / "second.csv", rows=300, employees=60, seed=42)
    assert main(["process", str(first), "--dataset", "employees"]) == 0
    text = path.read_text()
    for change, named in (
        (text.replace("epsilon_cap: 50.0", "epsilon_cap: 60.0"), "epsilon_cap 50 -> 60"),
        (text.replace("  policy: lifetime\n", "  policy: window\n  window: month\n"),
         "policy lifetime -> window"),
    ):  # fmt: skip
        assert change != text
        path.write_text(change)
        capsys.readouterr()
        assert main(["process", str(second), "--dataset", "employees"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("refused:") and named in err and "budget set" in err
        assert (pa.objects_dir / "landing" / "employees" / "second.csv").exists()
    path.write_text(text.replace("epsilon_cap: 50.0", "epsilon_cap: 60.0"))
    assert main(["budget", "set", "employees", "--epsilon-cap", "60", "--reason", "more files"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["budget", "set", "employees", "--epsilon-cap", "60", "--force",
                 "--reason", "the board approved more files", "--actor", "ops"]) == 0  # fmt: skip
    assert main(["process", str(second), "--dataset", "employees"]) == 0
    from analytics.store import ReadOnlyStore

    changes = ReadOnlyStore(pa.aggregate_store_url).terms_changes("employees")
    [raised] = [c for c in changes if c.actor == "ops"]
    assert raised.setting == "epsilon_cap" and raised.weakens and raised.forced
    assert raised.reason == "the board approved more files"
    runs = ReadOnlyStore(pa.aggregate_store_url).runs(limit=10, dataset="employees")
    assert any(r.status == "terms_changed" for r in runs)


def test_object_version_identity(pa) -> None:
    store = AggregateStore(pa.aggregate_store_url)
    assert (
        store.find_published(ObjectVersion(pa.s3_bucket, "landing/employees/none.csv", "0")) is None
    )
    store.close()


def test_exhausted_budget_still_masks_but_refuses_the_release(pa, tmp_path: Path, capsys) -> None:
    text = (pa.contracts_dir / "employees.yaml").read_text()
    small = text.replace("epsilon_cap: 50.0", "epsilon_cap: 1.5")
    assert small != text
    (pa.contracts_dir / "employees.yaml").write_text(small)
    first = write_employee_csv(tmp_path / "first.csv", rows=300, employees=60, seed=31)
    second = write_employee_csv(tmp_path / "second.csv", rows=300, employees=60, seed=32)
    assert main(["process", str(first), "--dataset", "employees"]) == 0
    capsys.readouterr()
    assert main(["process", str(second), "--dataset", "employees"]) == 1
    err = capsys.readouterr().err
    assert "budget" in err and "remaining" in err and "pending" in err
    masked = [p.name for p in (pa.objects_dir / "masked" / "employees").glob("second-*.parquet")]
    assert masked, "the file is still validated and masked"
    from analytics.store import ReadOnlyStore

    ro = ReadOnlyStore(pa.aggregate_store_url)
    assert ro.budget("employees").epsilon_spent <= 1.5 + 1e-9
    [run] = [r for r in ro.runs(limit=10, dataset="employees") if r.key.endswith("second.csv")]
    assert run.status == "budget_exhausted" and "remaining" in (run.reason or "")
