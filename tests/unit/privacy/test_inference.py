"""infer_contract(): real datasets, content patterns, no values in the draft."""

from __future__ import annotations

import polars as pl
import pytest
import yaml

from privacy.contract import Role, parse_contract
from privacy.errors import ContractError
from privacy.inference import infer_contract


def draft(lf: pl.LazyFrame, name: str = "d"):  # type: ignore[no-untyped-def]
    text = infer_contract(lf, name)
    return text, parse_contract(text, "<draft>")


def test_covid_identifiers(read_raw) -> None:  # type: ignore[no-untyped-def]
    text, c = draft(read_raw("covid_testing"), "covid_testing")
    ids = set(c.columns_with(Role.IDENTIFIER))
    assert {"fake_first_name", "fake_last_name", "subject_id"} <= ids
    assert c.privacy_unit == "subject_id" and c.columns["subject_id"].mask_action == "pseudonymize"
    assert "test_id" not in ids  # named like an id, but two values: not an identifier
    assert c.columns["pan_day"].role is Role.TIME
    assert "REVIEW" in text


def test_the_privacy_unit_is_a_column_that_exists() -> None:
    """The most person-like column is proposed (pseudonymized); ids of tests or records are
    passed over; without any, the draft says rows are people and asks for a review."""
    n = 200
    survey = pl.LazyFrame(
        {
            "seqn": [str(1000 + i) for i in range(n)],
            "sex": ["f", "m"] * (n // 2),
            "bmi": [20.0 + i % 15 for i in range(n)],
        }
    )
    text, c = draft(survey)
    assert c.privacy_unit == "seqn" and "privacy_unit: seqn" in text and "id" not in c.columns
    assert c.columns["seqn"].mask_action == "pseudonymize" and c.max_rows_per_unit == 1
    visits = pl.LazyFrame(
        {
            "visit_id": [f"v{i}" for i in range(n)],
            "patient_id": [f"p{i // 4}" for i in range(n)],
            "score": [i % 7 for i in range(n)],
        }
    )
    text, c = draft(visits)
    assert c.privacy_unit == "patient_id" and c.max_rows_per_unit > 1
    text, c = draft(pl.LazyFrame({"x": [1.5, 2.5] * 20, "team": ["a", "b"] * 20}))
    assert c.privacy_unit is None and c.rows_are_people and "rows_are_people: true" in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wage_survey", {"age", "race", "maritl", "region", "education"}),
        ("hr_attrition", {"Age", "Gender", "MaritalStatus", "Department"}),
    ],
)
def test_quasi_identifiers(name: str, expected: set[str], read_raw) -> None:  # type: ignore[no-untyped-def]
    _, c = draft(read_raw(name), name)
    assert expected <= set(c.quasi_identifiers)
    assert not set(c.quasi_identifiers) & set(c.measures)
    assert c.anonymity.k == 5


def test_draft_never_copies_values_keys_or_exact_bounds(read_raw) -> None:  # type: ignore[no-untyped-def]
    raw = read_raw("hr_attrition").collect()
    text, c = draft(raw.lazy(), "hr")
    values = {v for col in raw.columns for v in raw[col].unique().to_list() if v and len(v) > 3}
    body = yaml.safe_load(text)
    assert all(col.keys is None for col in c.columns.values())
    scrubbed = text
    for col in sorted(raw.columns, key=len, reverse=True):  # column names are metadata
        scrubbed = scrubbed.replace(col, "")
    leaked = [v for v in values if not v.isdigit() and v in scrubbed]
    assert leaked == []
    assert c.columns["MonthlyIncome"].auto_bounds is not None  # no number from the data
    assert body["dataset"] == "hr"


def test_a_draft_takes_no_number_from_the_data() -> None:
    """A file whose largest value is 987,654: the draft names neither that value nor the
    power of ten above it, and no exact row or distinct-value count."""
    n = 1629
    lf = pl.LazyFrame(
        {
            "salary": [float(1000 + (i * 7919) % 900_000) for i in range(n - 1)] + [987_654.0],
            "grade": [f"g{i % 3}" for i in range(n)],
            "level": [i % 3 for i in range(n)],
        }
    )
    text, c = draft(lf)
    assert "987654" not in text and "987,654" not in text
    assert "1000000" not in text and "1e6" not in text.lower() and "1,000,000" not in text
    assert str(n) not in text and "3 distinct" not in text
    assert "few distinct values" in text and "bounds: auto" in text
    assert c.columns["salary"].auto_bounds is not None


def test_content_patterns() -> None:
    n = 40
    lf = pl.LazyFrame(
        {
            "contact": [f"user{i}@mail.example.com" for i in range(n)],
            "c2": [f"+1 (555) 010-{1000 + i}" for i in range(n)],
            "acct": ["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"] * (n // 2),
            "pan": ["4111111111111111", "5500000000000004"] * (n // 2),
            "host": [f"10.0.0.{i}" for i in range(n)],
            "ref": [f"https://example.org/u/{i}" for i in range(n)],
            "tax": [f"{100 + i:03d}-45-{6000 + i}" for i in range(n)],
            "who": ["maria", "john", "ahmed", "sofia"] * (n // 4),
            "status": ["open", "closed"] * (n // 2),
        }
    )
    _, c = draft(lf)
    ids = set(c.columns_with(Role.IDENTIFIER))
    assert ids == {"contact", "c2", "acct", "pan", "host", "ref", "tax", "who"}
    assert c.columns["status"].role is Role.DIMENSION


def test_multilingual_names_and_checksums_matter() -> None:
    lf = pl.LazyFrame(
        {
            "Nachname": ["x"] * 5,
            "correo": ["x"] * 5,
            "fecha_nacimiento": ["2001-02-03"] * 5,
            "code_postal": ["75001"] * 5,
            "card": ["4111111111111112"] * 5,  # fails Luhn: not a card number
        }
    )
    _, c = draft(lf)
    assert (
        c.columns["Nachname"].role is Role.IDENTIFIER
        and c.columns["correo"].role is Role.IDENTIFIER
    )
    assert c.columns["fecha_nacimiento"].role is Role.QUASI_IDENTIFIER
    assert c.columns["code_postal"].role is Role.QUASI_IDENTIFIER
    assert c.columns["card"].role is not Role.IDENTIFIER


def test_bad_dataset_name() -> None:
    with pytest.raises(ContractError, match="dataset name"):
        infer_contract(pl.LazyFrame({"a": [1]}), "../etc")
