"""mask(): pseudonyms, generalization, suppression; pycanon confirms k on real data."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycanon import anonymity as pycanon

from privacy.contract import Contract, parse_contract
from privacy.errors import ContractError, PipelineError
from privacy.masking import (
    MASKED_PARQUET,
    PSEUDONYM_PREFIX,
    kept_classes,
    mask,
    mask_columns,
    mask_counts,
    mask_summary,
)
from privacy.reports import achieved_k
from privacy.validation import DTYPES, conform

KEY = b"test-key-1"


def contract(extra: str = "", k: int = 1) -> Contract:
    return parse_contract(
        f"""
dataset: t
rows_are_people: true
budget: {{epsilon_cap: 1}}
anonymity: {{k: {k}}}
columns:
  uid: {{role: identifier, type: string, action: pseudonymize}}
  email: {{role: identifier, type: string}}
  note: {{role: text, type: string}}
  age: {{role: quasi_identifier, type: integer, generalize: {{kind: band, width: 10}}}}
  zip: {{role: quasi_identifier, type: string, generalize: {{kind: prefix, length: 3}}}}
  day: {{role: time, type: date, generalize: {{kind: date, to: month}}}}
  pay: {{role: measure, type: float, bounds: [0, 100], generalize: {{kind: top_code, top: 50}}}}
{extra}"""
    )


def frame(n: int = 12) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "uid": [f"u{i % 4}" for i in range(n)],
            "email": [f"person{i}@example.org" for i in range(n)],
            "note": ["free text"] * n,
            "age": [20 + i for i in range(n)],
            "zip": ["19104", "19103", "10001"] * (n // 3) + ["19104"] * (n % 3),
            "day": [dt.date(2020, 1 + i % 12, 15) for i in range(n)],
            "pay": [float(i * 10) for i in range(n)],
        }
    )


def test_pseudonyms_match_python_hmac_and_drop_identifiers() -> None:
    out = mask(frame(), contract(), KEY).collect()
    assert out.columns == ["uid", "age", "zip", "day", "pay"]
    expected = PSEUDONYM_PREFIX + hmac.new(KEY, b"u1", hashlib.sha256).hexdigest()
    assert out["uid"][1] == expected
    assert out["age"].to_list()[:3] == [20, 20, 20] and out["age"][10] == 30
    assert set(out["zip"]) == {"191", "100"}
    assert out["day"][0] == dt.date(2020, 1, 1)
    assert out["pay"].max() == 50.0


def test_summary_lists_columns_by_action() -> None:
    s = mask_summary(contract())
    assert s.dropped == ["email", "note"] and s.pseudonymized == ["uid"]
    assert s.generalized == ["age", "zip", "day", "pay"] and s.quasi_identifiers == ["age", "zip"]


def test_drop_row_and_counts() -> None:
    c = contract("  extra: {role: dimension, type: string, missing: drop_row}\n", k=3)
    lf = frame().with_columns(pl.Series("extra", ["a", None] * 6))
    counts = mask_counts(lf, c).collect().row(0, named=True)
    out = mask(lf, c, KEY).collect()
    assert counts["rows_in"] == 12 and counts["rows_dropped_missing"] == 6
    assert counts["rows_out"] == out.height == 6 - counts["rows_suppressed"]


def test_k_anonymity_suppresses_small_classes_and_keep_classes_agrees() -> None:
    c = contract(k=3)
    lf = frame(30)
    out = mask(lf, c, KEY).collect()
    assert achieved_k(out.lazy(), c.quasi_identifiers) >= 3
    keep = kept_classes(lf, c).collect()
    one_scan = mask(lf, c, KEY, keep_classes=keep).collect()
    assert one_scan.sort(out.columns).equals(out.sort(out.columns))
    assert mask_counts(lf, c).collect()["rows_out"].item() == out.height


def test_l_diversity() -> None:
    c = parse_contract(
        "dataset: t\nrows_are_people: true\nbudget: {epsilon_cap: 1}\n"
        "anonymity: {k: 2, l_diversity: {column: dx, l: 2}}\ncolumns:\n"
        "  g: {role: quasi_identifier, type: string}\n  dx: {role: dimension, type: string}\n"
    )
    lf = pl.LazyFrame({"g": ["a", "a", "b", "b", "c"], "dx": ["x", "y", "x", "x", "z"]})
    out = mask(lf, c, KEY).collect()
    assert sorted(out["g"].to_list()) == ["a", "a"]  # b has one distinct dx, c is too small


def test_bad_key_and_unmasked_frame_give_clear_errors() -> None:
    with pytest.raises(PipelineError, match="empty"):
        mask(frame(), contract(), b"")
    with pytest.raises(ContractError, match="'email'"):
        mask(frame().drop("email"), contract(), KEY)


@pytest.mark.parametrize("name", ["covid_testing", "wage_survey", "hr_attrition"])
def test_real_datasets_are_k_anonymous_per_pycanon(name, real_contract, read_raw) -> None:  # type: ignore[no-untyped-def]
    c = real_contract[name]
    raw = read_raw(name)
    masked = mask(conform(raw, c), c, KEY).collect()
    qis = c.quasi_identifiers
    k = pycanon.k_anonymity(masked.to_pandas(), qis)
    assert k >= 5
    assert achieved_k(masked.lazy(), qis) == k
    ids = [n for n, col in c.columns.items() if col.role.value == "identifier"]
    raw_df = raw.collect()
    for col in ids:
        if col in masked.columns:  # pseudonymized: no raw value survives
            assert not set(masked[col].drop_nulls()) & set(raw_df[col].drop_nulls())
    if c.anonymity.l_diversity:
        ld = c.anonymity.l_diversity
        assert pycanon.l_diversity(masked.to_pandas(), qis, [ld.column]) >= ld.l


# ----------------------------------------------------------------------------- properties

_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
)
_PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _frame(ids: list[str], ages: list[int]) -> pl.LazyFrame:
    n = min(len(ids), len(ages))
    cols = {"uid": ids[:n], "email": ids[:n], "note": ids[:n], "age": ages[:n], "zip": ids[:n]}
    return pl.LazyFrame({**cols, "day": [dt.date(2021, 5, 5)] * n, "pay": [1.0] * n})


@_PROPS
@given(
    ids=st.lists(_text, min_size=1, max_size=30),
    ages=st.lists(st.integers(0, 99), min_size=30, max_size=30),
    k=st.integers(1, 4),
)
def test_no_identifier_value_in_clear(ids: list[str], ages: list[int], k: int) -> None:
    out = mask(_frame(ids, ages), contract(k=k), KEY).collect()
    cells = {str(v) for col in ("uid",) for v in out[col].to_list()}
    assert not cells & set(ids)
    assert "email" not in out.columns and "note" not in out.columns


@_PROPS
@given(ids=st.lists(_text, min_size=1, max_size=20), key2=st.binary(min_size=1, max_size=16))
def test_pseudonyms_stable_and_key_dependent(ids: list[str], key2: bytes) -> None:
    ages = [30] * len(ids)
    a = mask(_frame(ids, ages), contract(), KEY).collect()["uid"]
    b = mask(_frame(ids, ages), contract(), KEY).collect()["uid"]
    assert a.to_list() == b.to_list()
    other = key2 if key2 != KEY else key2 + b"!"
    try:
        other.decode("utf-8")
    except UnicodeDecodeError:
        other = other.hex().encode()
    c = mask(_frame(ids, ages), contract(), other).collect()["uid"]
    assert all(x != y for x, y in zip(a.to_list(), c.to_list(), strict=True))


@_PROPS
@given(ages=st.lists(st.integers(0, 120), min_size=1, max_size=60), k=st.integers(1, 6))
def test_generalize_and_suppress_are_idempotent(ages: list[int], k: int) -> None:
    c = parse_contract(
        f"dataset: t\nrows_are_people: true\nbudget: {{epsilon_cap: 1}}\nanonymity: {{k: {k}}}\ncolumns:\n"
        "  age: {role: quasi_identifier, type: integer, generalize: {kind: band, width: 10}}\n"
        "  g: {role: quasi_identifier, type: string, generalize: {kind: prefix, length: 1}}\n"
    )
    lf = pl.LazyFrame({"age": ages, "g": [str(a % 3) + "x" for a in ages]})
    once = mask(lf, c, KEY).collect()
    twice = mask(once.lazy(), c, KEY).collect()
    assert twice.sort(twice.columns).equals(once.sort(once.columns))
    if once.height:
        assert achieved_k(once.lazy(), ["age", "g"]) >= k


# ----------------------------------------------------------------------------- staged copy


def test_mask_columns_lists_what_mask_reads() -> None:
    c = contract("  extra: {role: identifier, type: string, missing: drop_row}\n")
    assert mask_columns(c) == ["uid", "age", "zip", "day", "pay", "extra"]  # extra: drop_row
    assert mask_columns(contract()) == ["uid", "age", "zip", "day", "pay"]


def test_staged_copy_of_mask_columns_masks_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The bench's path: stage the read columns (Arrow IPC), add the rest back as nulls."""
    c = contract("  extra: {role: identifier, type: string, missing: drop_row}\n", k=3)
    lf = frame(30).with_columns(pl.Series("extra", ["a", None, "b"] * 10))
    conformed = conform(lf, c)
    path = tmp_path / "staged.arrow"
    conformed.select(mask_columns(c)).sink_ipc(path)
    staged = pl.scan_ipc(path).with_columns(
        pl.lit(None, dtype=DTYPES[col.type]).alias(n)
        for n, col in c.columns.items()
        if n not in mask_columns(c)
    )
    keep = kept_classes(staged, c).collect(engine="streaming")
    out = mask(staged, c, KEY, keep_classes=keep)
    direct = mask(conformed, c, KEY).collect()
    assert out.collect().sort(direct.columns).equals(direct.sort(direct.columns))
    written = tmp_path / "masked.parquet"
    out.sink_parquet(written, **MASKED_PARQUET)
    assert pl.read_parquet(written).sort(direct.columns).equals(direct.sort(direct.columns))
    assert direct.height < 30  # drop_row and suppression both removed rows
