"""conform() and validate(): types, column checks, counts-only reports, GE agreement."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.contract import Contract, parse_contract
from privacy.errors import ContractViolation
from privacy.validation import (
    GE_RESULT_FORMAT,
    build_suite,
    check,
    conform,
    conform_expr,
    validate,
    validation_counts,
    validation_report,
)
from privacy.validation.expectations import _GeRunner

CANARY = "CANARY-7f3a9"

CONTRACT = parse_contract(
    """
dataset: people
rows_are_people: true
budget: {epsilon_cap: 5}
columns:
  person_id: {role: identifier, type: string, action: pseudonymize, unique: true, missing: reject}
  team: {role: dimension, type: string, keys: [red, blue]}
  age: {role: quasi_identifier, type: integer}
  score: {role: measure, type: float, bounds: [0, 10]}
  active: {role: dimension, type: boolean}
  joined: {role: time, type: date, format: "%d/%m/%Y"}
"""
)


def raw_frame(n_bad: int = 0) -> pl.LazyFrame:
    ids = [f"p{i}" for i in range(20)]
    teams = ["red", "blue"] * 10
    ages = [str(20 + i) for i in range(20)]
    scores = [str(i / 2) for i in range(20)]  # 10.5 > 10 and 11.0, ... up to 9.5 (none over)
    active = ["yes", "no"] * 10
    joined = ["01/02/2020"] * 20
    for i in range(n_bad):
        teams[i] = f"{CANARY}-team"
        ages[i] = f"{CANARY}-age"
        scores[i] = "NaN" if i % 2 else f"{CANARY}"
        ids[i + 1] = ids[0]  # duplicate ids
    return pl.LazyFrame(
        {
            "person_id": ids,
            "team": teams,
            "age": ages,
            "score": scores,
            "active": active,
            "joined": joined,
        }
    )


def test_conform_casts_trims_and_nulls_unreadable_values() -> None:
    raw = pl.LazyFrame(
        {
            "person_id": [" a ", "b", "   "],
            "team": ["red", " blue", ""],
            "age": ["30", "31.0", "31.5"],
            "score": ["1.5", "inf", "x"],
            "active": ["True", "0", "maybe"],
            "joined": ["01/02/2020", "2020-02-01", None],
        }
    )
    out = conform(raw, CONTRACT).collect()
    assert out.schema["age"] == pl.Int64 and out.schema["joined"] == pl.Date
    assert out["person_id"].to_list() == ["a", "b", None]
    assert out["team"].to_list() == ["red", "blue", None]
    outside = conform(raw.with_columns(pl.Series("team", ["red", "Red", "green"])), CONTRACT)
    assert outside.collect()["team"].to_list() == ["red", None, None]  # outside the keys
    assert out["age"].to_list() == [30, 31, None]
    assert out["score"].to_list() == [1.5, None, None]
    assert out["active"].to_list() == [True, False, None]
    assert out["joined"].to_list() == [dt.date(2020, 2, 1), None, None]


def test_conform_typed_input_and_iso_dates() -> None:
    c = parse_contract(
        "dataset: d\nrows_are_people: true\nbudget: {epsilon_cap: 1}\ncolumns:\n"
        "  n: {role: dimension, type: integer}\n  d: {role: time, type: date}\n"
        "  t: {role: time, type: datetime}\n  f: {role: measure, type: float, bounds: [0, 1]}\n"
    )
    raw = pl.LazyFrame(
        {
            "n": [1.0, 2.5],
            "d": ["2021-03-04", "04/03/2021"],
            "t": ["2021-03-04T05:06:07", "2021-03-04 05:06"],
            "f": [float("nan"), 0.5],
        }
    )
    out = conform(raw, c).collect()
    assert out["n"].to_list() == [1, None]
    assert out["d"].to_list() == [dt.date(2021, 3, 4), None]
    assert out["t"].to_list() == [dt.datetime(2021, 3, 4, 5, 6, 7), dt.datetime(2021, 3, 4, 5, 6)]
    assert out["f"].to_list() == [None, 0.5]


def test_missing_and_extra_columns_are_named_without_values() -> None:
    raw = raw_frame().drop("age").with_columns(pl.lit(CANARY).alias("notes"))
    with pytest.raises(ContractViolation) as err:
        conform(raw, CONTRACT)
    msg = str(err.value)
    assert "'age'" in msg and "'notes'" in msg and CANARY not in msg and "\n" not in msg
    dropping = CONTRACT.model_copy(update={"extra_columns": "drop"})
    with pytest.raises(ContractViolation, match="'age'"):
        conform(raw, dropping)
    assert conform(
        raw_frame().with_columns(pl.lit(1).alias("x")), dropping
    ).collect_schema().names() == list(CONTRACT.columns)


def test_clean_file_passes_and_counts_clamped() -> None:
    raw = raw_frame().with_columns(
        pl.when(pl.col("person_id") == "p3")
        .then(pl.lit("12"))
        .otherwise(pl.col("score"))
        .alias("score")
    )
    report = validate(raw, conform(raw, CONTRACT), CONTRACT)
    assert report.ok and report.rows == 20
    assert report.clamped == {"score": 1}
    assert report.ge_results == []  # clean file: GE has nothing to look at
    assert "all" in report.reason()


def test_bad_file_counts_every_rule_and_ge_agrees() -> None:
    raw = raw_frame(n_bad=4)
    report = validate(raw, conform(raw, CONTRACT), CONTRACT)
    assert not report.ok  # the contract opts in to unique ids: duplicates refuse the file
    failed = {(r.rule, r.column): r.failed_count for r in report.failures}
    assert failed == {("unique", "person_id"): 4}
    nulled = {(r.rule, r.column): r.failed_count for r in report.nulled}
    assert nulled == {("type", "age"): 4, ("type", "score"): 4, ("in_keys", "team"): 4}
    assert report.values_nulled == 12
    notes = report.notes()
    assert notes is not None and "12 values set to null" in notes and CANARY not in notes
    assert "4 values outside the public keys of 'team'" in notes
    strict = CONTRACT.model_copy(update={"on_bad_value": "reject"})
    strict_report = validate(raw, conform(raw, strict), strict)
    assert {(r.rule, r.column): r.failed_count for r in strict_report.failures} == {
        ("type", "age"): 4,
        ("type", "score"): 4,
        ("in_keys", "team"): 4,
        ("unique", "person_id"): 4,
    }
    ge = {(g.expectation.split(":")[1], g.column): g.unexpected_count for g in report.ge_results}
    assert ge[("type", "age")] == 4 and ge[("type", "score")] == 4 and ge[("in_keys", "team")] == 4
    reason = report.reason()
    assert "\n" not in reason and CANARY not in reason
    assert "unique on 'person_id'" in reason and "type on 'age'" not in reason
    assert "type on 'age': 4 rows" in strict_report.reason()
    assert CANARY not in json.dumps(report.as_dict())


def test_one_bad_value_in_a_large_file_nulls_one_cell() -> None:
    """A 10,000-row file with one typo and one value outside the keys is not refused: the
    two cells become null and the report counts them."""
    n = 10_000
    raw = pl.LazyFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "team": ["red", "blue"] * (n // 2 - 1) + ["red", "purple"],
            "age": [str(20 + i % 40) for i in range(n - 1)] + ["4O"],
            "score": ["1.5"] * n,
            "active": ["yes"] * n,
            "joined": ["01/02/2020"] * n,
        }
    )
    report = validate(raw, conform(raw, CONTRACT), CONTRACT)
    assert report.ok, report.reason()
    assert report.values_nulled == 2 and report.rows == n
    out = conform(raw, CONTRACT).collect()
    assert out["team"].null_count() == 1 and out["age"].null_count() == 1


def test_not_null_rule_on_missing_reject() -> None:
    raw = raw_frame().with_columns(
        pl.when(pl.col("team") == "red")
        .then(None)
        .otherwise(pl.col("person_id"))
        .alias("person_id")
    )
    report = validate(raw, conform(raw, CONTRACT), CONTRACT)
    assert {(r.rule, r.column): r.failed_count for r in report.failures}[
        ("not_null", "person_id")
    ] == 10


def test_check_reports_column_problems_in_one_report() -> None:
    raw = raw_frame().drop("joined").with_columns(pl.lit("x").alias("extra"))
    report = check(raw, CONTRACT)
    assert not report.ok
    rules = {(r.rule, r.column) for r in report.failures}
    assert rules == {("column_present", "joined"), ("no_extra_columns", "extra")}
    assert "column 'joined' is missing" in report.reason()


def test_user_expectations_run_in_chunks(tmp_path: Path) -> None:
    (tmp_path / "people.expectations.json").write_text(
        json.dumps(
            {
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {"column": "age", "max_value": 30},
                    }
                ]
            }
        )
    )
    raw = raw_frame()
    report = validate(
        raw, conform(raw, CONTRACT), CONTRACT, expectations_dir=tmp_path, chunk_rows=7
    )
    user = [r for r in report.rules if r.rule.startswith("user:")]
    assert len(user) == 1 and user[0].column == "age" and user[0].failed_count == 9  # ages 31..39
    assert report.ge_rows_checked == 20 and not report.ok


def test_broken_user_expectations_name_the_file(tmp_path: Path) -> None:
    from privacy.errors import ContractError

    (tmp_path / "people.expectations.json").write_text('{"expectations": [{"kwargs": {}}]}')
    raw = raw_frame()
    with pytest.raises(ContractError, match=r"expectations\.0"):
        validate(raw, conform(raw, CONTRACT), CONTRACT, expectations_dir=tmp_path)


def test_raw_ge_output_carries_no_values() -> None:
    """GE itself, with our result format, returns no unexpected values or rows."""
    df = (
        conform(raw_frame(n_bad=4), CONTRACT)
        .with_columns([pl.lit(True).alias(f"__type_ok__{n}") for n in CONTRACT.columns])
        .collect()
    )
    runner = _GeRunner(build_suite(CONTRACT), "canary")
    results = runner.run(df.with_columns(pl.col(pl.Date).cast(pl.Datetime("us"))).to_pandas())
    blob = json.dumps(results, default=str)
    assert CANARY not in blob and results
    assert GE_RESULT_FORMAT["partial_unexpected_count"] == 0


def test_real_datasets_validate(real_contract: dict[str, Contract], read_raw) -> None:  # type: ignore[no-untyped-def]
    for name, contract in real_contract.items():
        raw = read_raw(name)
        report = validate(raw, conform(raw, contract), contract)
        assert report.ok, report.reason()
        assert report.rows > 1000


# --------------------------------------------------------------------------- fast paths

ALL_TYPES = parse_contract(
    """
dataset: types
rows_are_people: true
budget: {epsilon_cap: 1}
columns:
  s: {role: dimension, type: string, keys: [a, b]}
  i: {role: quasi_identifier, type: integer}
  f: {role: measure, type: float, bounds: [0, 10]}
  b: {role: dimension, type: boolean, missing: reject}
  d: {role: time, type: date}
  dd: {role: time, type: date, format: "%d/%m/%Y"}
  t: {role: time, type: datetime}
  tf: {role: time, type: datetime, format: "%d/%m/%Y %H:%M"}
  u: {role: identifier, type: string, unique: true}
"""
)
TOKENS = [
    None, "", "   ", " 1 ", "1", "1.0", "1.5", "-2", "nan", "NaN", "inf", "-inf", "1e400",
    "yes", "No", "TRUE", "0", "a", " b", "c", "2021-03-04", " 2021-03-04 ", "04/03/2021",
    "2021-03-04T05:06:07", "2021-03-04 05:06", "04/03/2021 05:06", "x" * 20,
]


def _text_frame(data: st.DataObject, n: int) -> pl.LazyFrame:
    col = st.lists(st.sampled_from(TOKENS), min_size=n, max_size=n)
    return pl.LazyFrame(
        {name: data.draw(col) for name in ALL_TYPES.columns},
        schema=dict.fromkeys(ALL_TYPES.columns, pl.String),
    )


def _typed_frame() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "s": [1, None, 3],
            "i": [1.0, 2.5, float("nan")],
            "f": [float("inf"), 0.5, None],
            "b": [1, 0, None],
            "d": [dt.datetime(2021, 3, 4, 5), None, dt.datetime(2020, 1, 1)],
            "dd": [dt.date(2021, 3, 4), None, dt.date(2020, 1, 1)],
            "t": [dt.datetime(2021, 3, 4, 5, tzinfo=dt.UTC), None, None],
            "tf": [dt.date(2021, 3, 4), None, None],
            "u": [[1], [2], None],
        }
    )


def _expected_type_failures(raw: pl.LazyFrame, conformed: pl.DataFrame) -> dict[str, int]:
    """Independently: non-blank raw values that did not conform, per column."""
    df = raw.collect()
    out = {}
    for name in ALL_TYPES.columns:
        present = [
            v is not None and (not isinstance(v, str) or v.strip() != "") for v in df[name].to_list()
        ]
        out[name] = sum(p and c is None for p, c in zip(present, conformed[name].to_list(), strict=True))
    return out


def _check_fast_paths(raw: pl.LazyFrame) -> None:
    schema = raw.collect_schema()
    conformed = conform(raw, ALL_TYPES)
    stepwise = conformed.collect()
    # the stepwise plan (chained selects) equals the one-expression form of every column
    one_expr = raw.select(conform_expr(n, c, schema[n]) for n, c in ALL_TYPES.columns.items())
    assert stepwise.equals(one_expr.collect())
    assert stepwise.equals(conformed.collect(engine="streaming"))
    report = validate(raw, conformed, ALL_TYPES)
    types = {r.column: r.failed_count for r in report.rules if r.rule == "type"}
    if schema["s"] == pl.String:
        assert types["s"] == 0 and types["u"] == 0  # text read as text cannot fail
    before_keys = raw.select(
        conform_expr(n, c, schema[n], keys=False) for n, c in ALL_TYPES.columns.items()
    ).collect()
    expected = _expected_type_failures(raw, before_keys)
    assert {n: types[n] for n in types if types[n] or expected[n]} == {
        n: expected[n] for n in expected if types[n] or expected[n]
    }
    # counting together with other queries on the conformed frame gives the same report
    counts, staged = pl.collect_all(
        [validation_counts(raw, ALL_TYPES), conformed.select("i", "d")], engine="streaming"
    )
    assert validation_report(raw, conformed, ALL_TYPES, counts) == report
    assert staged.equals(stepwise.select("i", "d"))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(min_value=1, max_value=30))
def test_stepwise_conform_and_counts_match_reference_on_text(data: st.DataObject, n: int) -> None:
    _check_fast_paths(_text_frame(data, n))


def test_stepwise_conform_and_counts_match_reference_on_typed_input() -> None:
    _check_fast_paths(_typed_frame())
    out = conform(_typed_frame(), ALL_TYPES).collect()
    assert out["s"].to_list() == [None, None, None]  # 1 and 3 are outside the keys [a, b]
    assert out["i"].to_list() == [1, None, None]
    assert out["f"].to_list() == [None, 0.5, None]
    assert out["d"].to_list() == [dt.date(2021, 3, 4), None, dt.date(2020, 1, 1)]
    assert out["u"].to_list() == [None, None, None]


def test_type_failures_ignore_blank_text() -> None:
    raw = raw_frame().with_columns(
        pl.when(pl.col("person_id") == "p1").then(pl.lit("   ")).otherwise(pl.col("score")).alias("score")
    )
    report = validate(raw, conform(raw, CONTRACT), CONTRACT)
    assert report.ok, report.reason()


def test_validation_report_refuses_a_frame_that_is_not_the_counts() -> None:
    from privacy.errors import ContractError

    raw = raw_frame()
    with pytest.raises(ContractError, match="validation_counts"):
        validation_report(raw, conform(raw, CONTRACT), CONTRACT, pl.DataFrame({"x": [1, 2]}))
    with pytest.raises(ContractViolation, match="conform"):
        validation_report(
            raw, conform(raw, CONTRACT).drop("age"), CONTRACT,
            validation_counts(raw, CONTRACT).collect(),
        )
