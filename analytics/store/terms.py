"""Pinned budget terms of a dataset: what they are, how two sets of them differ, and how a
difference is worded (ARCHITECTURE invariant 9).

A dataset's ε cap, δ cap, budget policy, window, privacy unit and rows per unit are fixed in
the aggregate store when the dataset is first registered. A contract that differs is refused
(``analytics.store.pinning`` raises ``BudgetTermsChanged`` with :func:`changed_message`);
only an operator changes them, with ``privacy-analytics budget set``, and every change is a
logged entry. Pure: no I/O, nothing read from a row.

    >>> old = Terms(50.0, 1e-6, "lifetime", None, "employee_id", 12)
    >>> new = Terms(60.0, 1e-6, "window", "month", "employee_id", 12)
    >>> [str(c) for c in diff_terms(old, new)]  # doctest: +NORMALIZE_WHITESPACE
    ['epsilon_cap 50 -> 60 (raises the cap)', 'policy lifetime -> window (weakens the guarantee)',
     'window none -> month (weakens the guarantee)']
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analytics.store.spend import WINDOWS

if TYPE_CHECKING:
    from privacy.contract import Contract

__all__ = [
    "NO_WINDOW",
    "ROWS_ARE_PEOPLE",
    "SETTINGS",
    "WINDOWS",
    "SettingChange",
    "Terms",
    "changed_message",
    "diff_terms",
    "effect_of",
    "format_number",
    "initial_changes",
    "set_command",
]

#: the pinned settings, in the order they are shown
SETTINGS = ("epsilon_cap", "delta_cap", "policy", "window", "privacy_unit", "max_rows_per_unit")
#: how the privacy unit reads when every row is a different person
ROWS_ARE_PEOPLE = "rows are people"
#: how the window reads under the lifetime policy
NO_WINDOW = "none"
#: who records the terms the pipeline pins itself
PIPELINE_ACTOR = "pipeline"
FIRST_REGISTRATION = "first registration"
LEGACY_PIN = (
    "pinned from the contract: the dataset was registered before its privacy unit and rows "
    "per unit were pinned"
)

_CAPS = ("epsilon_cap", "delta_cap")


def format_number(x: float) -> str:
    """The shortest text that reads back as exactly ``x`` (``50.0`` reads ``50``).

    >>> format_number(50.0), format_number(1e-06), format_number(0.1)
    ('50', '1e-06', '0.1')
    """
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Terms:
    """One dataset's budget terms.

    ``privacy_unit`` is the column naming the person a row belongs to, None when every row
    is a different person. ``max_rows_per_unit`` is None only for a dataset registered before
    the unit was pinned (then ``privacy_unit`` is None too): the next contract pins both.
    """

    epsilon_cap: float
    delta_cap: float
    policy: str
    window: str | None
    privacy_unit: str | None
    max_rows_per_unit: int | None

    @classmethod
    def of_contract(cls, contract: Contract) -> Terms:
        b = contract.budget
        return cls(
            epsilon_cap=float(b.epsilon_cap),
            delta_cap=float(b.delta),
            policy=b.policy,
            window=b.window if b.policy == "window" else None,
            privacy_unit=None if contract.rows_are_people else contract.privacy_unit,
            max_rows_per_unit=int(contract.max_rows_per_unit),
        )

    @classmethod
    def of_row(cls, row: Mapping[Any, Any]) -> Terms:
        """The terms of a ``datasets`` row (any mapping with its column names)."""
        rows = row["max_rows_per_unit"]
        return cls(
            epsilon_cap=float(row["epsilon_cap"]),
            delta_cap=float(row["delta_cap"]),
            policy=str(row["policy"]),
            window=row["window"],
            privacy_unit=row["privacy_unit"] if rows is not None else None,
            max_rows_per_unit=None if rows is None else int(rows),
        )

    @property
    def unit_pinned(self) -> bool:
        return self.max_rows_per_unit is not None

    @property
    def rows_are_people(self) -> bool:
        return self.unit_pinned and self.privacy_unit is None

    def text(self, setting: str) -> str | None:
        """How ``setting`` reads in entries and messages (None: not pinned yet)."""
        if setting in _CAPS:
            return format_number(getattr(self, setting))
        if setting == "policy":
            return self.policy
        if setting == "window":
            return self.window or NO_WINDOW
        if not self.unit_pinned:
            return None
        if setting == "privacy_unit":
            return self.privacy_unit if self.privacy_unit is not None else ROWS_ARE_PEOPLE
        if setting == "max_rows_per_unit":
            return str(self.max_rows_per_unit)
        raise KeyError(setting)

    def columns(self) -> dict[str, Any]:
        """The ``datasets`` columns that hold these terms."""
        return {
            "epsilon_cap": self.epsilon_cap,
            "delta_cap": self.delta_cap,
            "policy": self.policy,
            "window": self.window,
            "privacy_unit": self.privacy_unit,
            "max_rows_per_unit": self.max_rows_per_unit,
        }


@dataclass(frozen=True)
class SettingChange:
    """One pinned setting that differs: ``old`` is None when it was not pinned before."""

    setting: str
    old: str | None
    new: str
    weakens: bool
    effect: str

    def __str__(self) -> str:
        return f"{self.setting} {self.old or 'unpinned'} -> {self.new} ({self.effect})"


def effect_of(setting: str, weakens: bool) -> str:
    """How a change of ``setting`` that does (or does not) weaken the guarantee reads.

    >>> effect_of("epsilon_cap", True), effect_of("policy", True)
    ('raises the cap', 'weakens the guarantee')
    """
    if setting in _CAPS:
        return "raises the cap" if weakens else "lowers the cap"
    if setting == "max_rows_per_unit":
        return "changes the noise, not the guarantee"
    return "weakens the guarantee"


def _effect(setting: str, old: Terms, new: Terms) -> tuple[bool, str]:
    if setting in _CAPS:
        weakens = getattr(new, setting) > getattr(old, setting)
    else:
        weakens = setting != "max_rows_per_unit"
    return weakens, effect_of(setting, weakens)


def _unit(t: Terms) -> tuple[bool, str | None]:
    return t.unit_pinned, t.privacy_unit


def diff_terms(old: Terms, new: Terms) -> list[SettingChange]:
    """The settings of ``new`` that differ from ``old``, in :data:`SETTINGS` order.

    A setting ``old`` has not pinned yet (a dataset registered before units were pinned)
    appears with ``old`` None and never weakens the guarantee. A ``new`` that pins no unit
    leaves the unit as it is.
    """
    out: list[SettingChange] = []
    for setting in SETTINGS:
        if setting in ("privacy_unit", "max_rows_per_unit"):
            if not new.unit_pinned:
                continue
            same = (
                _unit(old) == _unit(new)
                if setting == "privacy_unit"
                else old.max_rows_per_unit == new.max_rows_per_unit
            )
        else:
            same = getattr(old, setting) == getattr(new, setting)
        if same:
            continue
        after = new.text(setting)
        assert after is not None
        before = old.text(setting)
        if before is None:
            out.append(SettingChange(setting, None, after, False, "first pinned"))
            continue
        weakens, effect = _effect(setting, old, new)
        out.append(SettingChange(setting, before, after, weakens, effect))
    return out


def initial_changes(terms: Terms) -> list[SettingChange]:
    """The entries a first registration records: every setting, old None."""
    out = []
    for setting in SETTINGS:
        text = terms.text(setting)
        if text is not None:
            out.append(SettingChange(setting, None, text, False, FIRST_REGISTRATION))
    return out


def set_command(dataset: str, changes: Sequence[SettingChange], new: Terms) -> str:
    """The ``privacy-analytics budget set`` command that makes ``new`` the pinned terms."""
    flags: list[str] = []
    settings = {c.setting for c in changes}
    if "epsilon_cap" in settings:
        flags += ["--epsilon-cap", format_number(new.epsilon_cap)]
    if "delta_cap" in settings:
        flags += ["--delta-cap", format_number(new.delta_cap)]
    if "policy" in settings:
        flags += ["--policy", new.policy]
    if "window" in settings and new.window is not None:
        flags += ["--window", new.window]
    if "privacy_unit" in settings:
        flags += (
            ["--rows-are-people"]
            if new.privacy_unit is None
            else ["--privacy-unit", shlex.quote(new.privacy_unit)]
        )
    if "max_rows_per_unit" in settings:
        flags += ["--max-rows-per-unit", str(new.max_rows_per_unit)]
    if any(c.weakens for c in changes):
        flags.append("--force")
    return " ".join(["privacy-analytics budget set", shlex.quote(dataset), *flags,
                     '--reason "..."'])


def changed_message(dataset: str, changes: Sequence[SettingChange], new: Terms) -> str:
    """The one-line reason a contract that differs from the pinned terms is refused."""
    listed = ", ".join(str(c) for c in changes)
    lead = (
        "If your privacy policy allows it, an operator runs: "
        if any(c.weakens for c in changes)
        else "To accept the change, an operator runs: "
    )
    return (
        f"dataset '{dataset}': the contract changes its pinned budget terms: {listed}; "
        f"nothing was released. {lead}{set_command(dataset, changes, new)}"
    )
