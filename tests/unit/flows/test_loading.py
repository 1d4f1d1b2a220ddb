"""Readers (flows.loading) on real files and on junk. Every refusal is counts-only: a canary
planted in the junk never appears in the message."""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

import polars as pl
import pytest

from flows.guards import internal_error, polars_guard, sanitized
from flows.loading import SNIFF_BYTES, format_of, load_file
from privacy.contract import CsvOptions
from privacy.errors import InputRejected, PipelineError

CANARY = "CANARY7f3q9ZZ"


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def _rejected(path: Path, **kwargs: object) -> str:
    """Load and collect; the refusal (at load or collect time) must be an InputRejected."""
    with pytest.raises(InputRejected) as err:
        load_file(path, **kwargs).collect()  # type: ignore[arg-type]
    msg = str(err.value)
    assert CANARY not in msg and CANARY.lower() not in msg.lower()
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize(
    ("name", "rows", "columns", "first_columns"),
    [
        ("hr_attrition.csv", 1470, 31, ["Age", "Attrition", "BusinessTravel"]),
        ("covid_testing.csv", 15524, 17, ["subject_id", "fake_first_name", "fake_last_name"]),
        ("wage_survey.csv", 3000, 11, ["year", "age", "maritl"]),
    ],
)
def test_real_csv_files_load_as_text(
    real_datasets: os.PathLike[str], name: str, rows: int, columns: int, first_columns: list[str]
) -> None:
    path = Path(real_datasets) / name
    lf = load_file(path)
    assert isinstance(lf, pl.LazyFrame)
    df = lf.collect()
    assert df.height == rows
    assert df.width == columns
    assert df.columns[:3] == first_columns
    assert set(df.schema.values()) == {pl.String}  # types are applied later, by the contract
    header = path.read_text().splitlines()[0].split(",")
    assert df.columns == header


def test_real_file_through_a_different_name_picks_the_format_by_name(
    real_datasets: os.PathLike[str],
) -> None:
    # the object store hands a temp file called "object"; the key's file name decides
    src = Path(real_datasets) / "wage_survey.csv"
    assert load_file(src, name="wage survey (2).CSV").collect().height == 3000
    assert _rejected(src, name="wage.xlsx").startswith("file type '.xlsx' is not supported")


# --------------------------------------------------------------------------- CSV junk


def test_empty_file_is_refused(tmp_path: Path) -> None:
    assert "empty (0 bytes)" in _rejected(_write(tmp_path, "a.csv", b""))


@pytest.mark.parametrize("data", [b"   \n  \n", b"\n\n\n", b"\r\n", b" "])
def test_whitespace_only_file_has_no_header(tmp_path: Path, data: bytes) -> None:
    assert "no header row" in _rejected(_write(tmp_path, "a.csv", data))


def test_binary_junk_is_refused(tmp_path: Path) -> None:
    data = os.urandom(4096) + b"\x00" + CANARY.encode()
    assert "looks binary" in _rejected(_write(tmp_path, "a.csv", data))


def test_png_named_csv_is_refused(tmp_path: Path) -> None:
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
        b"\x1f\x15\xc4\x89\x00\x00\x00\x0btEXtComment\x00"
        + CANARY.encode()
        + b"\x00\x00\x00\x00IEND"
    )
    msg = _rejected(_write(tmp_path, "photo.csv", png))
    assert "binary" in msg or "UTF-8" in msg


def test_utf16_with_bom_is_refused_with_a_hint(tmp_path: Path) -> None:
    data = f"name,v\n{CANARY},1\n".encode("utf-16")
    assert data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    msg = _rejected(_write(tmp_path, "a.csv", data))
    assert "UTF-16" in msg and "csv.encoding: utf16" in msg


def test_utf16_loads_when_the_contract_declares_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", "name,v\nZoë,1\n".encode("utf-16"))
    df = load_file(path, csv_options=CsvOptions(encoding="utf16")).collect()
    assert df.columns == ["name", "v"]
    assert df.rows() == [("Zoë", "1")]


def test_latin1_bytes_are_refused_as_utf8_with_the_offset(tmp_path: Path) -> None:
    data = f"name,v\n{CANARY}caf\xe9,1\n".encode("latin-1")
    msg = _rejected(_write(tmp_path, "a.csv", data))
    assert "not valid UTF-8" in msg
    offset = data.index(b"\xe9")
    assert f"offset {offset}" in msg


def test_latin1_loads_when_declared(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", "name,v\ncafé,1\n".encode("latin-1"))
    df = load_file(path, csv_options=CsvOptions(encoding="latin1")).collect()
    assert df.rows() == [("café", "1")]


def test_multibyte_char_cut_at_the_sniff_boundary_is_not_a_false_alarm(tmp_path: Path) -> None:
    head = "v\n" + "a" * (SNIFF_BYTES - 3)
    data = (head + "é\n").encode()  # 'é' straddles byte SNIFF_BYTES
    assert data[SNIFF_BYTES - 1 : SNIFF_BYTES + 1] == "é".encode()
    assert load_file(_write(tmp_path, "a.csv", data)).collect().height == 1


@pytest.mark.parametrize("bom", [codecs.BOM_UTF8])
def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path, bom: bytes) -> None:
    df = load_file(_write(tmp_path, "a.csv", bom + b"name,v\nx,1\n")).collect()
    assert df.columns == ["name", "v"]
    assert df.rows() == [("x", "1")]


def test_header_names_are_stripped_of_surrounding_spaces(tmp_path: Path) -> None:
    df = load_file(_write(tmp_path, "a.csv", b" name , v\nx,1\n")).collect()
    assert df.columns == ["name", "v"]


@pytest.mark.parametrize(("sep", "label"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_wrong_delimiter_gives_a_hint(tmp_path: Path, sep: str, label: str) -> None:
    data = sep.join(["a", "b", "c"]) + "\n" + sep.join([CANARY, "2", "3"]) + "\n"
    msg = _rejected(_write(tmp_path, "a.csv", data))
    assert label in msg and "csv.delimiter" in msg


def test_declared_delimiter_and_tsv_suffix_are_honoured(tmp_path: Path) -> None:
    semi = load_file(_write(tmp_path, "a.csv", "a;b\n1;2\n"), csv_options=CsvOptions(delimiter=";"))
    assert semi.collect().rows() == [("1", "2")]
    tsv = load_file(_write(tmp_path, "a.tsv", "a\tb\n1\t2\n")).collect()
    assert tsv.columns == ["a", "b"]


def test_single_column_csv_is_fine(tmp_path: Path) -> None:
    assert load_file(_write(tmp_path, "a.csv", "only\nx\ny\n")).collect().height == 2


def test_duplicate_headers_are_refused_by_name(tmp_path: Path) -> None:
    msg = _rejected(_write(tmp_path, "a.csv", f"a,b,a\n{CANARY},2,3\n"))
    assert "repeats column name(s): a" in msg


def test_duplicate_after_stripping_is_refused(tmp_path: Path) -> None:
    assert "repeats" in _rejected(_write(tmp_path, "a.csv", f"a, a\n{CANARY},2\n"))


def test_blank_header_names_are_refused_with_positions(tmp_path: Path) -> None:
    msg = _rejected(_write(tmp_path, "a.csv", f"a,,c, \n{CANARY},2,3,4\n"))
    assert "2 empty column name(s)" in msg and "[2, 4]" in msg


def test_ragged_rows_are_refused_without_leaking_values(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", f"a,b\n1,2\n{CANARY},{CANARY}x,{CANARY}y\n")
    lf = load_file(path)
    # the refusal happens when the rows are read; polars' own error is raised there
    with pytest.raises(pl.exceptions.PolarsError):
        lf.collect()
    # ... which process_object's guard turns into a counts-only InputRejected
    guarded = sanitized(lambda: load_file(path).collect())
    with pytest.raises(InputRejected) as err:
        guarded()
    assert CANARY not in str(err.value)
    assert "ComputeError" in str(err.value)


def test_short_rows_are_padded_with_nulls(tmp_path: Path) -> None:
    df = load_file(_write(tmp_path, "a.csv", "a,b\n1,2\n3\n")).collect()
    assert df.rows() == [("1", "2"), ("3", None)]


def test_polars_errors_that_quote_cells_are_translated(tmp_path: Path) -> None:
    # an unterminated quote makes polars quote the cell in its message
    path = _write(tmp_path, "a.csv", f'a,b\n"{CANARY},1\n2,3\n')
    with pytest.raises(pl.exceptions.PolarsError) as raw:
        load_file(path).collect()
    assert CANARY in str(raw.value)  # the leak the guard exists for
    msg = str(polars_guard("load", raw.value))
    assert CANARY not in msg
    assert msg == f"load failed while reading the file ({type(raw.value).__name__})"
    internal = internal_error(raw.value)
    assert CANARY not in internal
    assert type(raw.value).__name__ in internal and "sweep will retry" in internal


def test_internal_error_names_our_frame_only() -> None:
    def boom() -> None:
        raise ValueError(f"secret cell {CANARY}")

    try:
        boom()
    except ValueError as exc:
        msg = internal_error(exc)
    assert CANARY not in msg
    assert "ValueError at test_loading.py:" in msg

    wrapped = sanitized(boom)
    with pytest.raises(PipelineError) as err:
        wrapped()
    assert CANARY not in str(err.value) and err.value.__cause__ is None


def test_huge_single_field_loads(tmp_path: Path) -> None:
    big = "x" * (5 * 1024 * 1024)
    df = load_file(_write(tmp_path, "a.csv", f"a,b\n{big},1\n")).collect()
    assert df.height == 1
    assert len(df["a"][0]) == len(big)


def test_formula_and_html_cells_load_unchanged(tmp_path: Path) -> None:
    cells = [
        '=HYPERLINK("http://evil.example","x")',
        "+1+1",
        "@SUM(A1)",
        "<script>alert(1)</script>",
    ]
    lines = ["v"] + ['"' + c.replace('"', '""') + '"' for c in cells]
    df = load_file(_write(tmp_path, "a.csv", "\n".join(lines) + "\n")).collect()
    assert df["v"].to_list() == cells


def test_nan_and_inf_text_survive_as_strings(tmp_path: Path) -> None:
    df = load_file(_write(tmp_path, "a.csv", "x,y\nNaN,inf\n-inf,nan\n1e309,-0\n")).collect()
    assert df.schema == {"x": pl.String, "y": pl.String}
    assert df.rows() == [("NaN", "inf"), ("-inf", "nan"), ("1e309", "-0")]


def test_empty_fields_are_null_not_empty_strings(tmp_path: Path) -> None:
    df = load_file(_write(tmp_path, "a.csv", "a,b\n,1\n")).collect()
    assert df.rows() == [(None, "1")]


# --------------------------------------------------------------------------- size and suffix


def test_file_over_max_bytes_is_refused_unread(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", f"a\n{CANARY}\n")
    size = path.stat().st_size
    assert load_file(path, max_bytes=size).collect().height == 1  # the limit itself is allowed
    msg = _rejected(path, max_bytes=size - 1)
    assert f"{size} bytes, over the limit of {size - 1}" in msg and "PA_MAX_FILE_BYTES" in msg


@pytest.mark.parametrize("name", ["a.xlsx", "a", "a.csv.gz", "a.exe", "a.CSVX"])
def test_unsupported_suffix_is_refused(tmp_path: Path, name: str) -> None:
    msg = _rejected(_write(tmp_path, name, f"a\n{CANARY}\n"))
    assert "is not supported" in msg


def test_format_of_is_case_insensitive() -> None:
    assert format_of("A.CSV") == "csv"
    assert format_of("a.NDJSON") == "jsonl"
    assert format_of("a.pq") == "parquet"


# --------------------------------------------------------------------------- JSON


def test_json_array_of_objects(tmp_path: Path) -> None:
    rows = [{"a": 1, "b": "x"}, {"a": 2.5, "b": None}, {"b": "z", "c": True}]
    df = load_file(_write(tmp_path, "a.json", json.dumps(rows))).collect()
    assert df.columns == ["a", "b", "c"]
    assert df.rows() == [("1", "x", None), ("2.5", None, None), (None, "z", "true")]


def test_json_values_of_mixed_types_are_read_as_text(tmp_path: Path) -> None:
    """One row's value of another type (or a nested value) does not refuse the file: every
    value is text, and the contract's types decide later, row by row."""
    rows = [{"a": 1}, {"a": "two"}, {"a": {"inner": CANARY}}, {"a": [1, 2]}, {"a": 3}]
    df = load_file(_write(tmp_path, "a.json", json.dumps(rows))).collect()
    assert df.schema == {"a": pl.String}
    assert df["a"].to_list()[:2] == ["1", "two"] and df["a"].to_list()[4] == "3"
    path = _write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    lines = load_file(path).collect()
    assert lines.schema == {"a": pl.String} and lines.height == 5


@pytest.mark.parametrize("wrapper", ["rows", "data", "records"])
def test_json_with_a_single_list_wrapper(tmp_path: Path, wrapper: str) -> None:
    body = {wrapper: [{"a": 1}, {"a": 2}], "meta": {"version": 3}}
    df = load_file(_write(tmp_path, "a.json", json.dumps(body))).collect()
    assert df["a"].to_list() == ["1", "2"]


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (f'"{CANARY}"', "array of objects"),
        ("42", "array of objects"),
        ("null", "array of objects"),
        (json.dumps({"a": CANARY}), "array of objects"),
        (json.dumps({"x": [{"a": 1}], "y": [{"a": CANARY}]}), "array of objects"),
        ("[]", "empty (0 rows)"),
        (json.dumps([{"a": 1}, CANARY, [CANARY]]), "2 of 3 JSON array items are not objects"),
        ('[{"a": ' + CANARY + "}]", "not valid JSON at line 1"),
        ('[{"a": 1},\n{"a": "' + CANARY + '"', "not valid JSON at line 2"),
    ],
)
def test_json_refusals(tmp_path: Path, body: str, hint: str) -> None:
    assert hint in _rejected(_write(tmp_path, "a.json", body))


def test_json_latin1_is_refused(tmp_path: Path) -> None:
    data = json.dumps([{"a": CANARY + "é"}], ensure_ascii=False).encode("latin-1")
    assert "UTF-8" in _rejected(_write(tmp_path, "a.json", data))


def test_json_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.jsonl", '{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    df = load_file(path).collect()
    assert df.rows() == [("1", "x"), ("2", "y")]
    assert load_file(path, name="a.ndjson").collect().height == 2
    late = _write(tmp_path, "b.jsonl", '{"a": 1}\n' * 20_000 + '{"a": 2, "late": "x"}\n')
    assert load_file(late).collect_schema().names() == ["a", "late"]


def test_json_lines_with_a_bad_line_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.jsonl", f'{{"a": "{CANARY}"}}\nnot json {CANARY}\n')
    assert "cannot be read" in _rejected(path)




# --------------------------------------------------------------------------- Parquet


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}).write_parquet(path)
    df = load_file(path).collect()
    assert df.schema == {"a": pl.Int64, "b": pl.String}
    assert df.height == 3


def test_parquet_with_nested_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pl.DataFrame({"a": [[CANARY]], "s": [{"x": CANARY}]}).write_parquet(path)
    msg = _rejected(path)
    assert "nested values" in msg and "a" in msg and "s" in msg


@pytest.mark.parametrize("data", [f"a,b\n{CANARY},2\n".encode(), b"PAR", os.urandom(100)])
def test_fake_parquet_is_refused(tmp_path: Path, data: bytes) -> None:
    assert "not a Parquet file" in _rejected(_write(tmp_path, "a.parquet", data))


def test_truncated_parquet_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pl.DataFrame({"a": [CANARY] * 100}).write_parquet(good)
    data = good.read_bytes()
    path = _write(tmp_path, "a.pq", data[: len(data) // 2])
    assert "cannot be read" in _rejected(path)
