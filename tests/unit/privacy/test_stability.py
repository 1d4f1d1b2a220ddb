"""Every step between the raw file and OpenDP's input is person-stable (docs/architecture.md,
invariant 8, person-stable): adding or removing one person's rows changes OpenDP's input by
at most that person's rows.

The path under test is the flow's own: ``flows.stages.validate_and_stage`` (load-time
conform, per-row value handling), ``flows.stages.mask_staged`` (drop-row policies,
generalization, pseudonyms; it writes the release input and, separately, the suppressed
masked file) and ``analytics.analyses.opendp_input`` (the prepared columns every
measurement reads, the hashed privacy unit included). The per-person truncation itself
runs inside OpenDP's plan and is accounted for there.

The property, for a file D and a person X: ``input(D) == input(D without X) + input(X)``
as multisets of rows, and ``|input(X)| <= |rows of X|``. It holds exactly when every step
is row-wise; a global step such as small-class suppression breaks it, which the positive
controls below show on the masked (suppressed) file.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.analyses import opendp_input
from flows.stages import mask_staged, validate_and_stage
from privacy.contract import Contract
from privacy.keys import dataset_key
from tests.unit.contracts import contract_of, monthly_days

MASTER = b"stability-test-master-key-0123456789abcdef"
Rows = list[dict[str, str | None]]


def _run(rows: Rows, contract: Contract, columns: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(OpenDP's input, the masked file) for a raw file of ``rows`` (all text, like CSV)."""
    raw = pl.LazyFrame(
        {c: [r.get(c) for r in rows] for c in columns}, schema=dict.fromkeys(columns, pl.String)
    )
    key = dataset_key(MASTER, contract)
    with tempfile.TemporaryDirectory(prefix="pa-stability-") as tmp:
        staged, masked, release = (Path(tmp) / n for n in ("s.arrow", "m.parquet", "r.parquet"))
        report = validate_and_stage(raw, contract, staged)
        assert report.ok, report.reason()
        mask_staged(staged, contract, key, masked, report.rows, release)
        dp_in = opendp_input(pl.scan_parquet(release), contract)
        return dp_in, pl.read_parquet(masked)


def _bag(frame: pl.DataFrame) -> Counter[tuple[Any, ...]]:
    return Counter(frame.rows())


def _check_stable(people: list[Rows], contract: Contract, columns: list[str], x: int) -> None:
    everyone = [r for p in people for r in p]
    without = [r for i, p in enumerate(people) if i != x for r in p]
    full, _ = _run(everyone, contract, columns)
    rest, _ = _run(without, contract, columns)
    alone, _ = _run(people[x], contract, columns)
    assert _bag(full) == _bag(rest) + _bag(alone), "a step between the file and OpenDP is global"
    assert alone.height <= len(people[x])


# --------------------------------------------------------------------------- random contracts

# raw text values, good and bad: blanks, unparseable numbers, NaN and infinities, values
# beyond bounds, values outside public keys, odd dates
NUMBERS = ["1", "2.5", "-3", "40", "99.9", "1e9", "", "  ", "abc", "NaN", "inf", "-inf", None]
TEAMS = ["Atlas", "Borealis", " Atlas ", "atlas", "Cygnus", "", None, "Atl as"]
DATES = ["2025-01-03", "2025-02-28", "2025-12-31", "2026-07-04", "2024-12-31", "31/01/2025", "", None]
AGES = ["23", "37", "41", "58", "90", "x", "", None]


@st.composite
def contracts(draw: st.DrawFn) -> Contract:
    unit = draw(st.booleans())
    keys = draw(st.booleans())
    periods = draw(st.booleans())
    measure_type = draw(st.sampled_from(["float", "integer"]))
    k = draw(st.integers(1, 6))
    drop_row = draw(st.sampled_from([None, "team", "score", "day"]))
    columns: dict[str, Any] = {
        "pid": {"role": "identifier", "type": "string", "action": "pseudonymize"},
        "email": {"role": "identifier", "type": "string"},
        "team": {"role": "dimension", "type": "string"},
        "age": {"role": "quasi_identifier", "type": "integer",
                "generalize": {"kind": "band", "width": 10}},
        "score": {"role": "measure", "type": measure_type, "bounds": [0, 50]},
        "hours": {"role": "measure", "type": "float", "bounds": [-10, 10]},
        "day": {"role": "time", "type": "date", "granularity": "month"},
    }  # fmt: skip
    if keys:
        columns["team"]["keys"] = ["Atlas", "Borealis"]
    if periods:
        columns["day"]["periods"] = {"start": "2025-01-01", "end": "2025-12-31"}
    if drop_row:
        columns[drop_row]["missing"] = "drop_row"
    analyses = [
        {"kind": "summary"},
        {"kind": "distribution", "measure": "score", "bins": [0, 10, 25, 50]},
        {"kind": "comparison", "measure": "score", "by": "team"},
        {"kind": "trend", "time": "day", "measures": ["hours"]},
        {"kind": "correlation", "measures": ["score", "hours"]},
    ]
    data: dict[str, Any] = {
        "dataset": "stability",
        "budget": {"epsilon_cap": 10, "delta": 1e-6},
        "anonymity": {"k": k},
        "columns": columns,
        "analyses": draw(st.lists(st.sampled_from(analyses), min_size=1, max_size=5, unique_by=str)),
    }
    if unit:
        data |= {"privacy_unit": "pid", "max_rows_per_unit": draw(st.integers(1, 4))}
    else:
        data |= {"rows_are_people": True}
    return Contract.model_validate(data)


@st.composite
def people(draw: st.DrawFn, contract: Contract) -> list[Rows]:
    n = draw(st.integers(2, 7))
    out: list[Rows] = []
    for i in range(n):
        rows = 1 if contract.rows_are_people else draw(st.integers(1, 5))
        pid = draw(st.sampled_from([f"p{i}", f"p{i}", "", None])) if contract.privacy_unit else f"r{i}"
        out.append(
            [
                {
                    "pid": pid,
                    "email": f"person{i}@example.org",
                    "team": draw(st.sampled_from(TEAMS)),
                    "age": draw(st.sampled_from(AGES)),
                    "score": draw(st.sampled_from(NUMBERS)),
                    "hours": draw(st.sampled_from(NUMBERS)),
                    "day": draw(st.sampled_from(DATES)),
                }
                for _ in range(rows)
            ]
        )
    return out


COLUMNS = ["pid", "email", "team", "age", "score", "hours", "day"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_opendp_input_is_person_stable(data: st.DataObject) -> None:
    """Random contracts (privacy unit or rows are people, public or private keys and
    periods, drop-row policies, k-anonymity on) and files full of bad values."""
    contract = data.draw(contracts())
    crowd = data.draw(people(contract))
    x = data.draw(st.integers(0, len(crowd) - 1))
    # two people sharing a blank or null id are one unit to the pipeline: remove them as one
    pid = crowd[x][0]["pid"]
    if contract.privacy_unit and pid in ("", None):
        merged = [r for p in crowd if p[0]["pid"] in ("", None) for r in p]
        crowd = [p for p in crowd if p[0]["pid"] not in ("", None)] + [merged]
        x = len(crowd) - 1
    _check_stable(crowd, contract, COLUMNS, x)


# --------------------------------------------------------------------------- suppression repro


def _repro_contract(k: int = 5) -> Contract:
    return Contract.model_validate(
        {
            "dataset": "repro",
            "privacy_unit": "pid",
            "max_rows_per_unit": 12,
            "budget": {"epsilon_cap": 10},
            "anonymity": {"k": k},
            "columns": {
                "pid": {"role": "identifier", "type": "string", "action": "pseudonymize"},
                "zone": {"role": "quasi_identifier", "type": "string"},
                "x": {"role": "measure", "type": "float", "bounds": [0, 100]},
            },
            "analyses": [{"kind": "summary"}],
        }
    )


REPRO_COLUMNS = ["pid", "zone", "x"]


def _units(frame: pl.DataFrame) -> int:
    return frame["__unit__"].n_unique()


def test_suppression_repro_one_added_row_revives_a_small_class() -> None:
    """k=5: a class of 4 rows is suppressed; one added person with one row in it brings the
    whole class back. The masked file changes by 5 rows; OpenDP's input by that 1 row."""
    contract = _repro_contract(k=5)
    big = [{"pid": f"b{i}", "zone": "big", "x": "10"} for i in range(20)]
    small = [{"pid": f"s{i}", "zone": "small", "x": "90"} for i in range(4)]
    newcomer = [{"pid": "new", "zone": "small", "x": "90"}]
    dp_before, masked_before = _run(big + small, contract, REPRO_COLUMNS)
    dp_after, masked_after = _run(big + small + newcomer, contract, REPRO_COLUMNS)
    # the masked (k-anonymous) file: a global step, one person moves 5 rows
    assert masked_after.height - masked_before.height == 5
    # what OpenDP reads: that person's row and nothing else
    assert dp_after.height - dp_before.height == 1
    assert _bag(dp_after) - _bag(dp_before) == _bag(_run(newcomer, contract, REPRO_COLUMNS)[0])
    # the released sum moves by the newcomer's value only (centred on the bounds' midpoint
    # 50, in fixed-point units of 50/10^9)
    moved = dp_after["i:x"].sum() - dp_before["i:x"].sum()
    assert moved * 50 / 1e9 == pytest.approx(90 - 50)


def test_suppression_repro_one_person_in_twelve_small_classes() -> None:
    """One person with 12 rows in 12 classes of 4 other people each: with suppression
    before DP the distinct-people count moves by 49 while OpenDP is told 1."""
    contract = _repro_contract(k=5)
    base = [{"pid": f"b{i}", "zone": "big", "x": "10"} for i in range(30)]
    base += [{"pid": f"c{z}-{i}", "zone": f"z{z}", "x": "10"} for z in range(12) for i in range(4)]
    newcomer = [{"pid": "new", "zone": f"z{z}", "x": "10"} for z in range(12)]
    dp_before, masked_before = _run(base, contract, REPRO_COLUMNS)
    dp_after, masked_after = _run(base + newcomer, contract, REPRO_COLUMNS)
    assert masked_after["pid"].n_unique() - masked_before["pid"].n_unique() == 49
    assert _units(dp_after) - _units(dp_before) == 1
    assert dp_after.height - dp_before.height == 12  # its rows, truncated inside OpenDP


def test_the_check_detects_a_global_step() -> None:
    """Positive control: the same multiset check, run on the suppressed masked file, fails."""
    contract = _repro_contract(k=5)
    crowd = [[{"pid": f"b{i}", "zone": "big", "x": "10"}] for i in range(8)]
    crowd += [[{"pid": f"s{i}", "zone": "small", "x": "90"}] for i in range(5)]
    everyone = [r for p in crowd for r in p]
    full = _run(everyone, contract, REPRO_COLUMNS)[1]
    rest = _run([r for p in crowd[:-1] for r in p], contract, REPRO_COLUMNS)[1]
    alone = _run(crowd[-1], contract, REPRO_COLUMNS)[1]
    assert _bag(full) != _bag(rest) + _bag(alone)
    _check_stable(crowd, contract, REPRO_COLUMNS, len(crowd) - 1)  # OpenDP's input: stable


def test_dates_of_one_person_do_not_shift_anyone_elses_period() -> None:
    """A person far outside the public periods (or with an unreadable date) leaves the other
    rows' periods as they were."""
    contract = contract_of(
        "periods",
        {"day": monthly_days("2025-01-01", "2025-12-31"),
         "x": {"role": "measure", "type": "float", "bounds": [0, 1]}},
        [{"kind": "trend", "time": "day", "measures": ["x"]}],
        budget={"epsilon_cap": 10},
    )
    rows = [{"day": (dt.date(2025, 1, 1) + dt.timedelta(days=9 * i)).isoformat(), "x": "0.5"}
            for i in range(30)]  # fmt: skip
    crowd = [[r] for r in rows] + [[{"day": "1900-01-01", "x": "7"}], [{"day": "soon", "x": "?"}]]
    for x in (len(crowd) - 2, len(crowd) - 1, 0):
        _check_stable(crowd, contract, ["day", "x"], x)
