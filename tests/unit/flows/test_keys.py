"""Object key layout and validation (flows.keys)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.keys import (
    LandingKey,
    check_dataset,
    check_filename,
    landing_key,
    parse_landing_key,
)
from privacy.errors import InvalidKey, PipelineError

BAD_DATASETS = [
    "",
    "..",
    ".",
    "../etc",
    "a/b",
    "/abs",
    "a\\b",
    "a\x00b",
    "ds\n",  # `$` in a regex also matches before a trailing newline
    "ds\r",
    "ds\t",
    "-leading-dash",
    "_leading_underscore",
    "has space",
    "x" * 65,
    "еmployees",  # Cyrillic е, a homoglyph of e
    "employeеs",
    "ｅmployees",  # fullwidth e
    "emp\u200bloyees",  # zero-width space
    "emp\u202eloyees",  # right-to-left override
    "emp\x7floyees",
    "dätä",
]


@pytest.mark.parametrize("name", ["employees", "a", "A1", "wage_survey", "hr-2024", "x" * 64])
def test_good_dataset_names_pass_unchanged(name: str) -> None:
    assert check_dataset(name) == name


BAD_FILES = [
    "",
    ".",
    "..",
    "../x.csv",
    "a..csv",
    "x/../y.csv",
    "/etc/passwd",
    "a/b.csv",
    "a\\b.csv",
    "a\x00.csv",
    "file.csv\n",
    "file\n.csv",
    "file\r.csv",
    ".hidden.csv",
    " leading-space.csv",
    "-dash.csv",
    "x" * 201,
    "dаta.csv",  # Cyrillic а
    "data\u200b.csv",
    "data\u202ecsv.exe",
    "données.csv",
    "a;b.csv",
    "a*b.csv",
    "a?b.csv",
    "a%2e.csv",
    "$(rm).csv",
]


#: each check, what its message must say, and the names it refuses
REFUSALS = [
    (check_dataset, ("dataset name", "letters, digits"), BAD_DATASETS),
    (check_filename, ("file name",), BAD_FILES),
]


@pytest.mark.parametrize(
    ("check", "says", "name"),
    [(check, says, name) for check, says, names in REFUSALS for name in names],
)
def test_bad_names_are_refused_with_a_clear_message(
    check: Callable[[str], str], says: tuple[str, ...], name: str
) -> None:
    with pytest.raises(InvalidKey) as err:
        check(name)
    assert all(part in str(err.value) for part in says)
    assert isinstance(err.value, PipelineError)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "name", ["a.csv", "Employees 2024 (final).csv", "x+y.jsonl", "A_b-c.parquet", "x" * 200]
)
def test_good_file_names_pass(name: str) -> None:
    assert check_filename(name) == name


def test_long_names_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidKey) as err:
        check_filename("y" * 5000)
    assert len(str(err.value)) < 300
    assert "..." in str(err.value)


@pytest.mark.parametrize(
    ("key", "dataset", "filename"),
    [
        ("landing/employees/a.csv", "employees", "a.csv"),
        ("landing/hr-2024/Report 1 (v2).json", "hr-2024", "Report 1 (v2).json"),
        ("landing/x/data.parquet", "x", "data.parquet"),
    ],
)
def test_parse_landing_key_accepts_the_layout(key: str, dataset: str, filename: str) -> None:
    lk = parse_landing_key(key)
    assert lk == LandingKey(dataset, filename)
    assert lk.key == key


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("/landing/ds/a.csv", "absolute"),
        ("landing\\ds\\a.csv", "unsafe"),
        ("landing/ds/a\x00.csv", "unsafe"),
        ("landing/a.csv", "landing/<dataset>/<file>"),
        ("landing/ds/sub/a.csv", "landing/<dataset>/<file>"),
        ("quarantine/ds/a.csv", "landing/<dataset>/<file>"),
        ("masked/ds/a.parquet", "landing/<dataset>/<file>"),
        ("Landing/ds/a.csv", "landing/<dataset>/<file>"),
        ("landing/../a.csv", "dataset name"),
        ("landing/ds/..", "file name"),
        ("landing//a.csv", "dataset name"),
        ("landing/ds/", "file name"),
        ("landing/ds/.a.csv", "file name"),
        ("", "landing/<dataset>/<file>"),
    ],
)
def test_parse_landing_key_refuses_other_keys(key: str, hint: str) -> None:
    with pytest.raises(InvalidKey) as err:
        parse_landing_key(key)
    assert hint in str(err.value)


def test_landing_key_uses_only_the_base_name_of_a_local_path() -> None:
    assert landing_key("ds", "/tmp/some/where/file.csv").key == "landing/ds/file.csv"
    with pytest.raises(InvalidKey):
        landing_key("../ds", "file.csv")


def test_quarantine_and_masked_key_layout() -> None:
    lk = parse_landing_key("landing/employees/Team A.v2.CSV")
    assert lk.quarantine_key == "quarantine/employees/Team A.v2.CSV"
    assert lk.quarantine_report_key == "quarantine/employees/Team A.v2.CSV.report.json"
    assert lk.stem == "Team A.v2"
    assert lk.suffix == ".csv"
    etag = '"0123456789abcdef0123456789abcdef"'
    assert lk.masked_key(etag) == "masked/employees/Team A.v2-0123456789ab.parquet"
    assert lk.masked_report_key(etag) == "masked/employees/Team A.v2-0123456789ab.report.json"
    assert lk.release_input_key(etag) == "release-input/employees/Team A.v2-0123456789ab.parquet"
    # a multipart etag's '-' and quotes are stripped; an empty etag still gives a valid key
    assert lk.masked_key("abc-3") == "masked/employees/Team A.v2-abc3.parquet"
    assert lk.masked_key("") == "masked/employees/Team A.v2-0.parquet"
    assert lk.masked_key("../../x") == "masked/employees/Team A.v2-x.parquet"


# --------------------------------------------------------------------------- properties

_segment_chars = st.characters(codec="utf-8", exclude_characters="/")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.text(alphabet=_segment_chars, max_size=12), min_size=1, max_size=4).map("/".join)
    | st.text(max_size=40)
)
def test_accepted_keys_never_escape_their_folder(suffix: str) -> None:
    key = "landing/" + suffix
    try:
        lk = parse_landing_key(key)
    except InvalidKey:
        return
    parts = lk.key.split("/")
    assert len(parts) == 3
    assert parts[0] == "landing"
    assert not lk.key.startswith("/")
    assert all(p not in ("", ".", "..") for p in parts)
    assert ".." not in lk.key
    assert all(c.isascii() and c.isprintable() for c in lk.key)
    for derived in (
        lk.quarantine_key,
        lk.quarantine_report_key,
        lk.masked_key("e"),
        lk.masked_report_key("e"),
    ):
        segs = derived.split("/")
        assert len(segs) == 3 and ".." not in segs and not derived.startswith("/")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_accepted_names_are_plain_ascii_without_separators(name: str) -> None:
    for check in (check_dataset, check_filename):
        try:
            ok = check(name)
        except InvalidKey:
            continue
        assert ok == name
        assert name.isascii() and name.isprintable()
        assert "/" not in name and "\\" not in name and ".." not in name
        assert not name.startswith((".", "-", " "))
