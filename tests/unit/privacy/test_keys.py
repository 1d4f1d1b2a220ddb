"""Pseudonym keys: one per dataset, derived from the master key; linkage only by contract."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import polars as pl
import pytest

from flows.settings import Settings
from flows.up import run_up
from privacy.contract import Contract
from privacy.errors import PipelineError
from privacy.keys import MIN_MASTER_KEY_BYTES, dataset_key, hkdf_sha256
from privacy.masking import PSEUDONYM_PREFIX, release_input
from privacy.validation import conform

MASTER = b"m" * MIN_MASTER_KEY_BYTES


def test_hkdf_matches_rfc_5869_test_case_1() -> None:
    okm = hkdf_sha256(
        bytes([0x0B] * 22), bytes(range(0xF0, 0xFA)), length=42, salt=bytes(range(0x0D))
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def _contract(dataset: str, group: str | None = None) -> Contract:
    return Contract.model_validate(
        {
            "dataset": dataset,
            "privacy_unit": "pid",
            "max_rows_per_unit": 3,
            "linkage_group": group,
            "budget": {"epsilon_cap": 1},
            "columns": {"pid": {"role": "identifier", "action": "pseudonymize"}},
        }
    )


def _token(contract: Contract, master: bytes = MASTER) -> str:
    raw = pl.LazyFrame({"pid": ["employee-42"]})
    out = release_input(conform(raw, contract), contract, dataset_key(master, contract))
    token = out.collect()["pid"].item()
    assert token.startswith(PSEUDONYM_PREFIX)
    return str(token)


def test_the_same_id_has_different_tokens_in_two_datasets() -> None:
    assert _token(_contract("payroll")) != _token(_contract("projects"))
    assert _token(_contract("payroll")) == _token(_contract("payroll"))  # stable across files
    assert _token(_contract("payroll")) != _token(_contract("payroll"), b"n" * 40)


def test_datasets_in_one_linkage_group_share_tokens() -> None:
    a, b = _contract("payroll", "hr"), _contract("projects", "hr")
    assert _token(a) == _token(b)
    assert _token(a) != _token(_contract("payroll"))  # the group key is not a dataset's key


def test_the_token_is_hmac_sha256_under_the_derived_key() -> None:
    c = _contract("payroll")
    key = dataset_key(MASTER, c)
    assert len(key) == 64 and key != MASTER
    expected = hmac.new(key, b"employee-42", hashlib.sha256).hexdigest()
    assert _token(c) == PSEUDONYM_PREFIX + expected


def test_a_short_master_key_is_refused() -> None:
    with pytest.raises(PipelineError, match="16 bytes; at least 32"):
        dataset_key(b"k" * 16, _contract("payroll"))


def test_up_refuses_a_16_byte_key_at_start_up(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, pseudonym_key="0123456789abcdef")
    lines: list[str] = []
    with pytest.raises(PipelineError, match="PA_PSEUDONYM_KEY: the pseudonym key has 16 bytes"):
        run_up(settings, out=lines.append)
    assert not (tmp_path / "logs").exists() and lines == []  # nothing was started


def test_a_key_id_names_a_key_and_reveals_nothing_of_it() -> None:
    from privacy.keys import key_id

    a, b = b"a" * 64, b"b" * 64
    assert key_id(a) == key_id(a) != key_id(b)
    assert len(key_id(a)) == 16 and key_id(a) not in a.decode()


def test_the_release_input_carries_its_key_id(tmp_path: Path) -> None:
    from flows.demo import employee_frame
    from flows.stages import mask_staged
    from privacy.contract import load_contract
    from privacy.keys import KEY_ID_METADATA, dataset_key, key_id
    from privacy.masking import mask_columns

    root = Path(__file__).resolve().parents[3]
    contract = load_contract(root / "contracts" / "employees.yaml", "employees")
    staged = tmp_path / "staged.arrow"
    employee_frame(employees=20, rows=50).select(mask_columns(contract)).write_ipc(staged)
    key = dataset_key(b"m" * 32, contract)
    mask_staged(staged, contract, key, tmp_path / "masked.parquet", 50,
                tmp_path / "release.parquet")
    meta = pl.read_parquet_metadata(tmp_path / "release.parquet")
    assert meta[KEY_ID_METADATA] == key_id(key)
