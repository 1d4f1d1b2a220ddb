"""The dataset page discloses what shaped its numbers, badges every number, shows quantiles
with their rough range or not at all, and says exactly what its intervals cover (rendered
server-side from a store written through the real write API, no browser)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dash_bootstrap_components as dbc
import pytest

from analytics.store import AggregateStore
from dashboard import sections
from dashboard.components import DP_CLAIM
from dashboard.ids import DATASET, pattern
from dashboard.pages import dataset, overview
from dashboard.reading import how_to_read
from dashboard.services import Services
from dashboard.settings import DashboardSettings
from tests.browser.support import employee_release_set, employees_contract, publish
from tests.unit.dashboard.test_app import texts, walk
from tests.unit.dashboard.values import value

DASHBOARD = Path(__file__).resolve().parents[3] / "dashboard"
DAYS = "project_completion_days"
#: claims no interval on these pages can make (they cover the noise, nothing else)
OVERCLAIMS = ("covers the true value", "contains the true value", "true value in 95",
              "range that covers the true")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    with AggregateStore(url) as store:
        publish(store, employees_contract(), employee_release_set())
    s = Services.from_settings(DashboardSettings(store_url=url))
    yield s
    s.close()


def by_id(tree: Any, wanted: Any) -> Any:
    found = [c for c in walk(tree) if getattr(c, "id", None) == wanted]
    assert found, f"no component {wanted}"
    return found[0]


def badges(tree: Any) -> list[dbc.Badge]:
    return [c for c in walk(tree) if isinstance(c, dbc.Badge)
            and "noise-impact" in (c.className or "")]


def test_the_quality_warnings_lead_the_page(services: Services) -> None:
    page = dataset.render(services, "employees")
    warnings = texts(by_id(page, DATASET.quality_warnings))
    assert "What may bias these numbers" in warnings
    assert re.search(r"About 13% of project completion days values were above the "
                     r"contract's upper bound of 60 and count as 60", warnings)
    order = [getattr(c, "id", None) for c in page if getattr(c, "id", None)]
    assert order.index(DATASET.quality_warnings) < order.index(DATASET.how_to_read)


def test_shares_sit_next_to_the_numbers_they_shape(services: Services) -> None:
    page = dataset.render(services, "employees")
    mean = texts(by_id(page, pattern(DATASET.disclosure, f"summary:mean:{DAYS}")))
    assert "12% missing" in mean and "13% above the upper bound (count as 60)" in mean
    assert "0% below the lower bound" in mean
    rows = texts(by_id(page, pattern(DATASET.disclosure, "summary:count:")))
    assert "at least 3% of rows left out by the per-person bound" in rows
    people = texts(by_id(page, pattern(DATASET.disclosure, "summary:units:")))
    assert re.search(r"6% of people have more than \d+ rows", people)
    # the comparison, distribution and trend of the measure carry its shares too
    for name in (f"comparison:{DAYS}:team:{DAYS}", f"distribution:{DAYS}:{DAYS}",
                 f"trend:finish_date#1:{DAYS}"):
        note = texts(by_id(page, pattern(DATASET.disclosure, name)))
        assert "13% above the upper bound" in note, name
    table = texts(by_id(page, DATASET.quality_table))
    assert "above the upper bound 13%" in table and "95% CI 11% to 15%" in table


def test_every_number_carries_a_noise_impact_badge(services: Services) -> None:
    page = dataset.render(services, "employees")
    kpis = by_id(page, DATASET.kpis)
    cards = [c for c in walk(kpis) if isinstance(c, dbc.Card)]
    assert len(cards) == 5
    for card in cards:
        value_line = card.children.children[1]
        assert isinstance(value_line.children[-1], dbc.Badge)
        assert re.fullmatch(r"noise: (low|medium|high)", value_line.children[-1].children)
    # tables: one badge per published value (the efficiency comparison: 4 teams × count,
    # sum and mean, one difference and one ratio)
    comparison = sections.comparison_section(
        "comparison:efficiency:team",
        [v for v in services.store().latest_values("employees")
         if v.release_name == "comparison:efficiency:team"], [])
    assert len(badges(comparison)) == 4 * 3 + 2
    words = texts(page)
    assert "noise: low" in words and "rough guide" in words


def test_quantiles_come_with_their_rough_range(services: Services) -> None:
    page = dataset.render(services, "employees")
    listed = texts(by_id(page, pattern(DATASET.quantiles, f"distribution:{DAYS}")))
    assert listed.count("rough range") == 3 and listed.count("not a 95% interval") == 3
    assert "95% CI" not in listed and "noise scale" not in listed
    assert "Median of project_completion_days: 12, rough range 10.9 to 13.2" in listed


def test_quantiles_never_next_to_a_too_few_rows_sentence() -> None:
    hist = value("histogram", 90.0, 80.0, 100.0, column=DAYS, group={"bin": "[0, 5)"},
                 analysis="distribution", release="distribution:x")
    quantile = value("quantile_0.5", 12.0, 10.0, 14.0, column=DAYS, analysis="distribution",
                     release="distribution:x")
    old_shape = value("quantile_0.25", 8.0, column=DAYS, analysis="distribution",
                      release="distribution:x")  # a noise scale in rank units, no range
    too_few = ["Too few rows to quote quantiles of project completion days at this privacy "
               "budget: the noise could move them far from the true values, so none is "
               "published."]
    card = sections.distribution_section("distribution:x", [hist, quantile, old_shape], too_few)
    words = texts(card)
    assert "Too few rows" in words and "Median" not in words and "percentile" not in words
    card = sections.distribution_section("distribution:x", [hist, quantile, old_shape], [])
    words = texts(card)
    assert "Median" in words and "25th percentile" not in words and "noise scale" not in words


def test_the_reading_text_says_what_the_intervals_cover() -> None:
    words = texts(how_to_read())
    assert "covers the noise added to the value as defined" in words
    assert "after clamping and the per-person truncation, over the values present" in words
    assert "It does not cover what clamping, missing values or the truncation do" in words
    assert "simultaneous" in words and "rough guide" in words and "not a 95% interval" in words
    for share in ("Missing:", "Below the lower bound:", "Above the upper bound:",
                  "People over the row bound:", "Rows left out:"):
        assert share in words
    assert "under 10%" in words and "from 10% to 50%" in words and "50% or more" in words
    assert "low under 2, medium from 2 to 10, high 10 or more" in words


def test_no_page_claims_more_than_the_math(services: Services) -> None:
    page = texts(dataset.render(services, "employees")) + texts(overview.render(services))
    for claim in OVERCLAIMS:
        assert claim not in page.lower() and claim not in DP_CLAIM.lower()
    for path in DASHBOARD.rglob("*.py"):
        source = path.read_text(encoding="utf-8").lower()
        assert not [c for c in OVERCLAIMS if c in source], path


def test_exports_carry_the_shares_and_the_warnings(services: Services) -> None:
    def rows(key: str) -> list[dict[str, str]]:
        sent = dataset.export_csv(services, "employees", key)
        return list(csv.DictReader(io.StringIO(sent["content"])))

    summary = rows("summary")
    shares = {(r["metric"], r["column"]) for r in summary if r["analysis"] == "quality"
              and r["metric"] != "insight"}
    assert ("clamped_high_share", DAYS) in shares and ("truncated_share", "") in shares
    notes = [r["note"] for r in summary if r["metric"] == "insight"]
    assert any("upper bound of 60 and count as 60" in n for n in notes)
    assert all(r["noise_impact"] for r in summary if r["metric"] != "insight")
    quality = rows("quality")
    assert len([r for r in quality if r["metric"] != "insight"]) == 8
    assert len([r for r in quality if r["metric"] == "insight"]) == 3
    # the correlation's export carries the shares of both its measures
    corr = rows(f"correlation:{DAYS},efficiency")
    assert {r["column"] for r in corr if r["analysis"] == "quality"
            and r["metric"] != "insight"} == {DAYS, "efficiency"}
    distribution = rows(f"distribution:{DAYS}")
    q = [r for r in distribution if r["metric"].startswith("quantile_")]
    assert q and all(r["rough_lower"] and not r["lower_95"] for r in q)


def test_the_overview_badges_its_counts_and_shows_the_warnings(services: Services) -> None:
    page = overview.render(services)
    words = texts(page)
    assert "What may bias these numbers" in words and "count as 60" in words
    assert len(badges(page)) == 2
    assert "About 13%" not in " ".join(overview.headlines(
        services.store().releases("employees")))
