"""The quality release's shares, worded for the numbers they shape."""

from __future__ import annotations

from dashboard.disclosures import Disclosures, fmt_share, phrase
from tests.unit.dashboard.values import value

WARNING = ("About 13% of salary values were above the contract's upper bound of 200 and "
           "count as 200: the average of salary is biased low; raise the bound if such "
           "values are real.")
TRUNCATION = ("At least 4% of the rows were left out by the per-person bound of 2 rows; "
              "counts and sums cover the rows kept.")


def share(metric: str, v: float, column: str | None = "salary", release_id: int = 9):
    return value(metric, v, max(v - 0.02, 0.0), v + 0.02, column=column, analysis="quality",
                 release="quality", release_id=release_id)


def disclosures() -> Disclosures:
    values = [
        value("mean", 131.0, 130.0, 132.0, column="salary", analysis="summary",
              release="summary"),
        share("clamped_high_share", 0.13),
        share("missing_share", 0.1),
        share("clamped_low_share", 0.0),
        share("missing_share", 0.0, "hours"),
        share("truncated_share", 0.04, None),
        share("over_bound_share", 0.05, None),
    ]
    return Disclosures.of(values, {9: [WARNING, TRUNCATION], 1: ["not a warning"]},
                          max_rows=2)


def test_shares_are_picked_from_the_quality_release() -> None:
    d = disclosures()
    assert [v.metric for v in d.for_measure("salary")] == [
        "missing_share", "clamped_low_share", "clamped_high_share"]
    assert [v.metric for v in d.for_counts()] == ["truncated_share", "over_bound_share"]
    assert d.warnings == (WARNING, TRUNCATION)
    assert not Disclosures.of([], {})


def test_phrases_say_what_each_share_means() -> None:
    d = disclosures()
    by = {v.metric: v for v in d.shares if v.column in ("salary", None)}
    assert phrase(by["missing_share"], d) == "10% missing"
    assert phrase(by["clamped_high_share"], d) == "13% above the upper bound (count as 200)"
    # no warning names the lower bound, and the store does not hold the contract's bounds
    assert phrase(by["clamped_low_share"], d) == "0% below the lower bound"
    assert phrase(by["truncated_share"], d) == "at least 4% of rows left out by the " \
                                                "per-person bound"
    assert phrase(by["over_bound_share"], d) == "5% of people have more than 2 rows"


def test_an_estimated_bound_is_named_from_the_bounds_release() -> None:
    bound = value("clamp_upper", 250.0, column="salary", analysis="bounds", release="bounds",
                  release_id=4)
    d = Disclosures.of([share("clamped_high_share", 0.01), bound], {})
    assert phrase(d.shares[0], d) == "1% above the upper bound (count as 250)"


def test_warnings_go_with_the_numbers_they_are_about() -> None:
    d = disclosures()
    assert d.warnings_for(["salary"]) == [WARNING]
    assert d.warnings_for(["hours"]) == []
    assert d.warnings_for(["hours"], counts=True) == [TRUNCATION]
    assert [v.metric for v in d.relevant(["salary"], counts=True)] == [
        "missing_share", "clamped_low_share", "clamped_high_share", "truncated_share",
        "over_bound_share"]


def test_share_format() -> None:
    assert [fmt_share(x) for x in (0.0, 0.004, 0.013, 0.126, 1.0)] == [
        "0%", "under 1%", "1%", "13%", "100%"]
