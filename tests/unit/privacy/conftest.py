"""Fixtures of the privacy tests: the test contracts of the three real datasets."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from privacy.contract import Contract, load_contract

CONTRACTS = Path(__file__).parent / "contracts"
DATASETS = ("covid_testing", "wage_survey", "hr_attrition")


@pytest.fixture(scope="session")
def real_contract() -> dict[str, Contract]:
    return {name: load_contract(CONTRACTS / f"{name}.yaml", name) for name in DATASETS}


@pytest.fixture
def read_raw(real_datasets: Path):  # type: ignore[no-untyped-def]
    def read(name: str) -> pl.LazyFrame:
        return pl.scan_csv(Path(real_datasets) / f"{name}.csv", infer_schema=False)

    return read
