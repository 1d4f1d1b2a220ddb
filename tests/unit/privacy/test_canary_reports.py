"""Canary strings planted in identifier columns appear in no report, GE result or draft."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from privacy.contract import Contract
from privacy.inference import infer_contract
from privacy.masking import mask, mask_counts, mask_summary
from privacy.reports import PrivacyReport, achieved_k
from privacy.validation import conform, validate

CANARIES = [f"zzcanary{i:03d}q" for i in range(20)]


def planted(read_raw) -> pl.LazyFrame:  # type: ignore[no-untyped-def]
    raw = read_raw("covid_testing").head(2000).collect()
    n = raw.height
    ids = [CANARIES[i % len(CANARIES)] if i < 200 else v for i, v in enumerate(raw["subject_id"])]
    firsts = [
        CANARIES[(i + 7) % len(CANARIES)] + "x" if i < 100 else v
        for i, v in enumerate(raw["fake_first_name"])
    ]
    bad_age = [
        CANARIES[0] + "age" if i < 3 else v for i, v in enumerate(raw["age"])
    ]  # unreadable ages
    return (
        raw.with_columns(
            pl.Series("subject_id", ids),
            pl.Series("fake_first_name", firsts),
            pl.Series("age", bad_age),
        )
        .lazy()
        .select(raw.columns)[:n]
    )


def assert_clean(blob: str, where: str) -> None:
    hits = [c for c in CANARIES if c in blob]
    assert not hits, f"{len(hits)} canaries found in {where}"


def test_no_canary_in_reports_ge_results_or_inference(  # type: ignore[no-untyped-def]
    real_contract: dict[str, Contract], read_raw, tmp_path: Path
) -> None:
    contract = real_contract["covid_testing"]
    raw = planted(read_raw)
    (tmp_path / "covid_testing.expectations.json").write_text(
        json.dumps(
            {
                "expectations": [
                    {
                        "type": "expect_column_values_to_not_match_regex",
                        "kwargs": {"column": "subject_id", "regex": "canary"},
                    },
                    {
                        "type": "expect_column_value_lengths_to_be_between",
                        "kwargs": {"column": "fake_first_name", "max_value": 5},
                    },
                ]
            }
        )
    )
    conformed = conform(raw, contract)
    report = validate(raw, conformed, contract, expectations_dir=tmp_path)
    assert not report.ok  # the unreadable ages and the user rules fail
    assert report.ge_results and any(r.source == "user" for r in report.ge_results)
    assert_clean(report.model_dump_json(), "validation report")
    assert_clean(report.reason(), "validation reason")
    assert_clean(json.dumps([r.model_dump() for r in report.ge_results]), "GE results")

    masked = mask(conformed, contract, b"k").collect()
    counts = mask_counts(conformed, contract).collect().row(0, named=True)
    privacy = PrivacyReport.build(
        summary=mask_summary(contract),
        validation=report,
        dataset=contract.dataset,
        contract_version=contract.version,
        rows_in=counts["rows_in"],
        rows_out=masked.height,
        rows_suppressed=counts["rows_suppressed"],
        rows_dropped_missing=counts["rows_dropped_missing"],
        achieved_k=achieved_k(masked.lazy(), contract.quasi_identifiers),
    )
    assert_clean(privacy.model_dump_json(), "privacy report JSON")
    assert_clean(privacy.to_markdown(), "privacy report markdown")
    assert_clean(infer_contract(raw, "covid_testing"), "inference draft")
    # the masked data itself holds the canaries only in pseudonymized form
    assert_clean(" ".join(str(v) for v in masked.to_pandas().to_numpy().ravel()), "masked data")


def test_privacy_report_shapes(real_contract: dict[str, Contract], read_raw) -> None:  # type: ignore[no-untyped-def]
    contract = real_contract["wage_survey"]
    raw = read_raw("wage_survey")
    conformed = conform(raw, contract)
    masked = mask(conformed, contract, b"k")
    counts = mask_counts(conformed, contract).collect().row(0, named=True)
    rows_out = masked.select(pl.len()).collect().item()
    rep = PrivacyReport.build(
        summary=mask_summary(contract),
        validation=validate(raw, conformed, contract),
        dataset="wage_survey",
        contract_version=1,
        rows_in=counts["rows_in"],
        rows_out=rows_out,
        rows_suppressed=counts["rows_suppressed"],
        achieved_k=achieved_k(masked, contract.quasi_identifiers),
    )
    assert rep.rows_in == 3000 and rep.rows_in - rep.rows_suppressed == rep.rows_out
    assert rep.achieved_k is not None and rep.achieved_k >= 5
    md = rep.to_markdown()
    assert "| rows suppressed (small classes) |" in md and "`age`" in md
    assert PrivacyReport.model_validate_json(rep.model_dump_json()) == rep
