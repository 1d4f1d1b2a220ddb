"""The Prefect tasks of the `process-object` flow, each returning a typed, counts-only result.

Tasks exchange object keys and counts, never frames; they use the run's stores
(``flows.resources``) and are wrapped by ``flows.guards.sanitized``, so no library message
reaches a log.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NONE as NO_CACHE

from analytics.analyses import release_analyses
from analytics.store import AggregateStore, ObjectVersion, RunRecord, utcnow
from flows.guards import polars_errors, run_logger, sanitized
from flows.keys import LandingKey
from flows.loading import load_file
from flows.outcome import Masked, Published
from flows.resources import RunResources
from flows.stages import MaskStats, mask_staged, validate_and_stage
from privacy.budget import epsilon_alone
from privacy.contract import Contract
from privacy.errors import InputRejected
from privacy.keys import dataset_key
from privacy.masking import mask_summary
from privacy.reports import PrivacyReport, achieved_k
from privacy.validation import ValidationReport


class CalibrationCacheInStore:
    """DP noise scales depend on the contract only; keep them in the aggregate store."""

    def __init__(self, store: AggregateStore) -> None:
        self.store = store

    def get(self, key: str) -> float | None:
        return self.store.calibration_get(key)

    def put(self, key: str, scale: float) -> None:
        self.store.calibration_put(key, scale)


@task(name="locate", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
@sanitized
def locate(res: RunResources, event: ObjectVersion) -> ObjectVersion | None:
    """The object version now in the store under the event's key, or None when it is gone."""
    info = res.objects.stat(event.key)
    if info is None:
        return None
    if event.etag and info.etag != event.etag:
        run_logger().info("object changed since the event; processing its current version")
    return replace(event, etag=info.etag, size=info.size)


# --------------------------------------------------------------------------- mask


def _validate(raw: pl.LazyFrame, contract: Contract, staged: Path) -> ValidationReport:
    log = run_logger()
    with polars_errors("validation"):
        report = validate_and_stage(raw, contract, staged)
    log.info(
        "validated %s rows against contract v%s: %s rule(s) checked, ok=%s",
        report.rows,
        contract.version,
        len(report.rules),
        report.ok,
    )
    if not report.ok:
        raise InputRejected(report.reason())
    notes = report.notes()
    if notes:
        log.warning("%s", notes)
    return report


def _results(
    contract: Contract, landing: LandingKey, etag: str, report: ValidationReport,
    stats: MaskStats, k: int | None,
) -> tuple[Masked, PrivacyReport]:  # fmt: skip
    """The mask task's result and the privacy report written next to the masked file."""
    summary = mask_summary(contract)
    privacy_report = PrivacyReport.build(
        summary=summary,
        validation=report,
        dataset=contract.dataset,
        contract_version=contract.version,
        rows_in=report.rows,
        rows_out=stats.rows_out,
        rows_suppressed=stats.rows_suppressed,
        rows_dropped_missing=stats.rows_dropped_missing,
        achieved_k=k,
    )
    masked = Masked(
        masked_key=landing.masked_key(etag),
        release_key=landing.release_input_key(etag),
        rows_in=report.rows,
        rows_out=stats.rows_out,
        rows_suppressed=stats.rows_suppressed,
        rows_dropped_missing=stats.rows_dropped_missing,
        columns_dropped=len(summary.dropped),
        columns_pseudonymized=len(summary.pseudonymized),
        columns_generalized=len(summary.generalized),
        achieved_k=k,
        values_nulled=report.values_nulled,
        notes=report.notes(),
        report_markdown=privacy_report.to_markdown(),
    )
    return masked, privacy_report


@task(name="mask", cache_policy=NO_CACHE, persist_result=False)
@sanitized
def mask_object(res: RunResources, contract: Contract, landing: LandingKey, etag: str) -> Masked:
    """load -> conform -> validate -> mask -> write masked Parquet; returns counts only."""
    settings, store = res.settings, res.objects
    key = dataset_key(settings.pseudonym_key_bytes(), contract)
    with (
        store.local_copy(landing.key) as path,
        tempfile.TemporaryDirectory(prefix="pa-mask-") as tmp,
    ):
        raw = load_file(
            path, csv_options=contract.csv, max_bytes=settings.max_file_bytes, name=landing.filename
        )
        staged = Path(tmp) / "staged.arrow"
        report = _validate(raw, contract, staged)
        out = Path(tmp) / "masked.parquet"
        release_out = Path(tmp) / "release-input.parquet"
        with polars_errors("masking"):
            stats = mask_staged(staged, contract, key, out, report.rows, release_out)
            qis = contract.quasi_identifiers
            k = achieved_k(pl.scan_parquet(out), qis) if qis else None
        masked, privacy_report = _results(contract, landing, etag, report, stats, k)
        store.put_file(masked.release_key, release_out)
        store.put_file(masked.masked_key, out)
        store.put_bytes(
            landing.masked_report_key(etag), privacy_report.model_dump_json(indent=2).encode()
        )
    run_logger().info(
        "masked %s -> %s rows (%s suppressed for k-anonymity in the masked file only, %s "
        "dropped for missing values); wrote %s and the release input %s",
        masked.rows_in,
        masked.rows_out,
        masked.rows_suppressed,
        masked.rows_dropped_missing,
        masked.masked_key,
        masked.release_key,
    )
    return masked


# --------------------------------------------------------------------------- release


@task(name="release", cache_policy=NO_CACHE, persist_result=False)
@sanitized
def release_and_publish(
    res: RunResources, contract: Contract, obj: ObjectVersion, release_key: str, run: RunRecord
) -> Published | None:
    """Reserve budget, release through OpenDP from the release input (masked but not
    suppressed: see ``privacy.masking``), publish everything in one transaction. None: this
    object version was published by another run meanwhile."""
    agg = res.aggregates
    loss = contract.budget.release_loss
    reservation = agg.reserve(contract, loss, obj=obj, run_id=run.run_id)
    try:
        with res.objects.local_copy(release_key) as path:
            release_set = release_analyses(
                pl.scan_parquet(path), contract, loss, cache=CalibrationCacheInStore(agg)
            )
    except BaseException:
        agg.cancel(reservation)
        raise
    spent = release_set.loss
    eps = epsilon_alone(spent, contract.budget.delta)  # under zCDP: its ρ converted, alone
    run = replace(run, status="completed", epsilon_spent=eps,
                  delta_spent=spent.delta, finished_at=utcnow())  # fmt: skip
    log = run_logger()
    if not agg.publish(reservation, release_set, run):
        log.info("this object version was published by another run meanwhile; nothing new")
        return None
    values = sum(len(r.values) for r in release_set.releases)
    log.info("published %s releases (%s values) at %s", len(release_set.releases), values, spent)
    return Published(len(release_set.releases), values, eps, spent.delta)


# --------------------------------------------------------------------------- quarantine, tidy


@task(
    name="quarantine", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False
)
@sanitized
def quarantine(res: RunResources, landing: LandingKey, report: dict[str, Any]) -> str:
    store = res.objects
    if store.stat(landing.key) is not None:
        store.move(landing.key, landing.quarantine_key)
    store.put_bytes(landing.quarantine_report_key, json.dumps(report, indent=2).encode())
    return landing.quarantine_key


@task(name="tidy", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
@sanitized
def remove_raw(res: RunResources, landing: LandingKey, etag: str) -> bool:
    """Data minimisation: the raw file leaves landing/ once its masked form is safe."""
    if res.settings.keep_raw:
        return False
    store = res.objects
    info = store.stat(landing.key)
    if info is not None and info.etag == etag:  # never delete a newer version dropped meanwhile
        store.delete(landing.key)
        return True
    return False
