"""Synthetic employee data for the example contract (`contracts/employees.yaml`).

Every value here is invented: names come from small fixed lists, e-mails are derived from
them, and numbers are drawn from a seeded generator. Used by `privacy-analytics demo`, the
benchmarks and the tests.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

TEAMS = ("Atlas", "Borealis", "Cygnus", "Draco")
_FIRST = (
    "Ada",
    "Bram",
    "Chen",
    "Dana",
    "Emeka",
    "Freya",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kira",
    "Lars",
    "Mina",
    "Nils",
    "Oona",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tove",
)
_LAST = (
    "Aalto",
    "Berg",
    "Costa",
    "Dahl",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lund",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
)


def employee_frame(
    employees: int = 200,
    rows: int = 1_000,
    *,
    seed: int = 7,
    start: date = date(2025, 1, 1),
    days: int = 540,
    team_effect: dict[str, float] | None = None,
) -> pl.DataFrame:
    """``rows`` finished projects of ``employees`` people (several rows per person).

    ``team_effect`` multiplies each team's efficiency (default: Draco 1.2x, others 1.0x).
    """
    rng = np.random.default_rng(seed)
    effect = team_effect if team_effect is not None else {"Draco": 1.2}
    emp = np.arange(employees)
    first = np.array(_FIRST)[emp % len(_FIRST)]
    last = np.array(_LAST)[(emp // len(_FIRST)) % len(_LAST)]
    team_of = np.array(TEAMS)[rng.integers(0, len(TEAMS), employees)]
    who = rng.integers(0, employees, rows)
    team = team_of[who]
    base_eff = rng.normal(1.0, 0.15, rows).clip(0.2, 1.9)
    mult = np.array([effect.get(t, 1.0) for t in team])
    efficiency = (base_eff * mult).clip(0.0, 2.0).round(3)
    completion = (rng.gamma(4.0, 3.0, rows) / mult).clip(0.5, 59.0).round(1)
    offsets = rng.integers(0, days, rows)
    finish = [start + timedelta(days=int(o)) for o in offsets]
    return pl.DataFrame(
        {
            "employee_id": [f"E{100000 + int(i)}" for i in who],
            "name": [f"{first[i]} {last[i]}" for i in who],
            "email": [f"{first[i].lower()}.{last[i].lower()}{i}@example.com" for i in who],
            "team": team,
            "project_completion_days": completion,
            "efficiency": efficiency,
            "finish_date": finish,
        }
    )


def write_employee_csv(path: Path, **kwargs: object) -> Path:
    frame = employee_frame(**kwargs)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return path
