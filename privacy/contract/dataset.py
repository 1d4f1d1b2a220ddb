"""A contract's dataset-level settings: the privacy budget, dataset releases, k-anonymity,
CSV options.

>>> budget = Budget(epsilon_cap=20, delta=1e-6, epsilon_per_release=2)
>>> budget.releases_allowed, budget.release_delta
(10, 1e-07)
>>> zcdp = Budget(epsilon_cap=10, delta=1e-6, accounting="zcdp", rho_per_release=0.004)
>>> zcdp.releases_allowed, zcdp.release_loss
(369, ZCDPLoss(rho=0.004, delta=1.3550135501355012e-09))
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

from privacy.budget import Loss, PrivacyLoss, ZCDPLoss, zcdp_releases, zcdp_rho_for
from privacy.contract.enums import _Strict

_DEFAULT_EPSILON_PER_RELEASE = 1.0


class Budget(_Strict):
    """Per-dataset privacy budget. ε and δ are finite and positive (δ may be 0 only if no
    analysis needs private group keys)."""

    #: total ε the dataset may spend (per window under policy "window")
    epsilon_cap: float = Field(gt=0, allow_inf_nan=False)
    #: total δ the dataset may spend, like epsilon_cap
    delta: float = Field(default=1e-6, ge=0, lt=1, allow_inf_nan=False)
    #: ε spent on each file, split over its analyses (not used under accounting "zcdp")
    epsilon_per_release: float = Field(default=_DEFAULT_EPSILON_PER_RELEASE, gt=0, allow_inf_nan=False)
    #: δ spent on each file; default: δ cap shared evenly by the releases ε allows
    delta_per_release: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)
    policy: Literal["lifetime", "window"] = "lifetime"
    #: for policy "window": the calendar period after which spending resets
    window: Literal["day", "week", "month", "quarter", "year"] | None = None
    #: "pure": Laplace noise, ε adding up over releases; "zcdp": Gaussian noise, ρ adding
    #: up (zero-concentrated DP), the total held to (epsilon_cap, delta) through OpenDP's
    #: conversion: far less noise per release when a dataset releases often
    accounting: Literal["pure", "zcdp"] = "pure"
    #: under accounting "zcdp": ρ spent on each release, split over its analyses (see
    #: ``privacy-analytics plan CONTRACT --releases N`` for the ρ that spreads the cap)
    rho_per_release: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.accounting == "zcdp":
            if self.rho_per_release is None:
                raise ValueError(
                    "accounting 'zcdp' needs rho_per_release (ρ per release); "
                    "`privacy-analytics plan CONTRACT --releases N` gives the ρ that spreads "
                    "the cap over N releases"
                )
            # (a dumped contract carries the default: only another value is a mistake)
            if self.epsilon_per_release != _DEFAULT_EPSILON_PER_RELEASE:
                raise ValueError(
                    "accounting 'zcdp' spends rho_per_release, not epsilon_per_release: "
                    "remove epsilon_per_release"
                )
            if not self.delta > 0:
                raise ValueError("accounting 'zcdp' needs delta > 0 (its total is (ε, δ))")
            if self.releases_allowed < 1:
                raise ValueError(
                    f"rho_per_release {self.rho_per_release:g} is more than the cap "
                    f"(epsilon_cap {self.epsilon_cap:g}, delta {self.delta:g}) allows for "
                    "one release"
                )
        elif self.rho_per_release is not None:
            raise ValueError("rho_per_release needs accounting: zcdp")
        if self.accounting == "pure" and self.epsilon_per_release > self.epsilon_cap:
            raise ValueError("epsilon_per_release cannot exceed epsilon_cap")
        if self.policy == "window" and self.window is None:
            raise ValueError("policy 'window' needs window: day|week|month|quarter|year")
        if self.delta_per_release is not None and self.delta_per_release > self.delta:
            raise ValueError("delta_per_release cannot exceed delta (the δ cap)")
        return self

    @property
    def releases_allowed(self) -> int:
        """How many releases the cap pays for. Under zCDP: as many as keep ρ's conversion
        within ``epsilon_cap`` at half the δ cap (the other half is the thresholds'), or
        with ``delta_per_release`` set, at the δ their thresholds leave."""
        if self.accounting == "zcdp":
            assert self.rho_per_release is not None
            if self.delta_per_release is None:
                rho_cap = zcdp_rho_for(self.epsilon_cap, self.delta / 2)
                return int(rho_cap / self.rho_per_release * (1 + 1e-9))
            return zcdp_releases(self.epsilon_cap, self.delta, self.rho_per_release,
                                 self.delta_per_release)
        return max(int(self.epsilon_cap / self.epsilon_per_release + 1e-9), 1)

    @property
    def release_delta(self) -> float:
        """δ spent on each release (so that ε, not δ, is what runs out). Under zCDP, half the
        δ cap shared by the releases allowed, the other half left for the conversion."""
        if self.delta_per_release is not None:
            return self.delta_per_release
        if self.accounting == "zcdp":
            return self.delta / 2 / max(self.releases_allowed, 1)
        return self.delta / self.releases_allowed

    @property
    def release_loss(self) -> Loss:
        """What one release spends: (ε, δ), or (ρ, δ) under zCDP."""
        if self.accounting == "zcdp":
            assert self.rho_per_release is not None
            return ZCDPLoss(self.rho_per_release, self.release_delta)
        return PrivacyLoss(self.epsilon_per_release, self.release_delta)


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
