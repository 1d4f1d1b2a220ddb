"""A contract's dataset-level settings: the privacy budget, dataset releases, k-anonymity,
CSV options.

>>> budget = Budget(epsilon_cap=20, delta=1e-6, epsilon_per_release=2)
>>> budget.releases_allowed, budget.release_delta
(10, 1e-07)
>>> Anonymity(k=5).quasi_identifiers is None
True
>>> DatasetRelease(schedule="0 6 * * 1").per_file, DatasetRelease(every_files=3).scheduled
(True, True)
>>> ReleaseWindow(column="day", months=12).since(date(2026, 12, 15))
datetime.date(2025, 12, 1)
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from privacy.contract.enums import _Strict


class Budget(_Strict):
    """Per-dataset privacy budget. ε and δ are finite and positive (δ may be 0 only if no
    analysis needs private group keys)."""

    #: total ε the dataset may spend (per window under policy "window")
    epsilon_cap: float = Field(gt=0, allow_inf_nan=False)
    #: total δ the dataset may spend, like epsilon_cap
    delta: float = Field(default=1e-6, ge=0, lt=1, allow_inf_nan=False)
    #: ε spent on each file, split over its analyses
    epsilon_per_release: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    #: δ spent on each file; default: δ cap shared evenly by the releases ε allows
    delta_per_release: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)
    policy: Literal["lifetime", "window"] = "lifetime"
    #: for policy "window": the calendar period after which spending resets
    window: Literal["day", "week", "month", "quarter", "year"] | None = None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.epsilon_per_release > self.epsilon_cap:
            raise ValueError("epsilon_per_release cannot exceed epsilon_cap")
        if self.policy == "window" and self.window is None:
            raise ValueError("policy 'window' needs window: day|week|month|quarter|year")
        if self.delta_per_release is not None and self.delta_per_release > self.delta:
            raise ValueError("delta_per_release cannot exceed delta (the δ cap)")
        return self

    @property
    def releases_allowed(self) -> int:
        """How many files the ε cap pays for."""
        return max(int(self.epsilon_cap / self.epsilon_per_release + 1e-9), 1)

    @property
    def release_delta(self) -> float:
        """δ spent on each file (so that ε, not δ, is what runs out)."""
        if self.delta_per_release is not None:
            return self.delta_per_release
        return self.delta / self.releases_allowed


#: a five-field cron expression (minute hour day month weekday) or one of cron's @ names;
#: Prefect checks it fully when it schedules the `release-dataset` deployment
_CRON_FIELD = r"[0-9A-Za-z*/,?#-]+"
_CRON_RE = re.compile(
    rf"({_CRON_FIELD}\s+){{4}}{_CRON_FIELD}|@(yearly|annually|monthly|weekly|daily|hourly)"
)


class ReleaseWindow(_Strict):
    """A public time window for dataset releases: only rows whose ``column`` (a time column)
    falls in the last ``months`` calendar months, counted back from the start of the month
    the release runs in, are read (rows without a time are left out)."""

    column: str
    months: int = Field(ge=1, le=1200)

    def since(self, today: date) -> date:
        """The first day the window keeps, for a release on ``today``."""
        total = today.year * 12 + today.month - 1 - self.months
        return date(total // 12, total % 12 + 1, 1)


class DatasetRelease(_Strict):
    """Releases over the dataset as a whole (every file received so far, or the latest
    snapshot), besides or instead of one release per file.

    A person's rows accumulate across files, so a dataset release bounds each person's
    contribution over all of them with its own public ``max_rows_per_unit``: rows beyond it
    are dropped at random inside OpenDP (the truncated share discloses how many). A low bound
    drops rows, a high bound adds noise; ``privacy-analytics plan`` shows the trade-off.
    """

    #: release each file on its own as it arrives; false: spend only on dataset releases
    per_file: bool = True
    #: rows one person may contribute to a dataset release over all its files (default:
    #: the contract's per-file max_rows_per_unit)
    max_rows_per_unit: int | None = Field(default=None, ge=1, le=100_000)
    #: cron expression (UTC) for scheduled dataset releases, e.g. "0 6 * * 1" (Mondays 06:00)
    schedule: str | None = None
    #: start a dataset release once this many files have arrived since the last one
    every_files: int | None = Field(default=None, ge=1, le=100_000)
    #: ε of one dataset release, split over its analyses (default: budget.epsilon_per_release)
    epsilon: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    #: only the last N months of a time column (default: every row of every file)
    window: ReleaseWindow | None = None

    @model_validator(mode="after")
    def _check(self) -> DatasetRelease:
        if self.schedule is not None and not _CRON_RE.fullmatch(self.schedule.strip()):
            raise ValueError(
                "release.schedule must be a cron expression of five fields (minute hour day "
                "month weekday), e.g. '0 6 * * 1' for Mondays at 06:00 UTC"
            )
        return self

    @property
    def scheduled(self) -> bool:
        """Whether dataset releases start by themselves (a schedule or every N files)."""
        return self.schedule is not None or self.every_files is not None


class LDiversity(_Strict):
    column: str
    l: int = Field(ge=2)  # noqa: E741


class Anonymity(_Strict):
    k: int = Field(default=1, ge=1)
    #: quasi-identifier columns; default: every column with role quasi_identifier
    quasi_identifiers: list[str] | None = None
    #: optional l-diversity of a sensitive column within each equivalence class
    l_diversity: LDiversity | None = None


class CsvOptions(_Strict):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: Literal["utf8", "utf8-lossy", "latin1", "cp1252", "utf16"] = "utf8"
