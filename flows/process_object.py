"""The `process-object` flow: one run per object version dropped into `landing/`.

    locate   stat the object; an object version already published is a duplicate: stop
    contract find the dataset's contract (missing or broken: quarantine with a how-to)
    mask     load -> conform -> validate (Great Expectations) -> mask -> masked Parquet
    release  reserve budget -> OpenDP releases -> publish values, ledger and run together
    tidy     remove the raw file from landing/ (unless PA_KEEP_RAW)

Tasks exchange object keys and counts-only summaries, never frames; results are not
persisted; every message is counts-only. Rejected input is moved intact to quarantine/ with a
counts-only report and the run ends in a `Rejected` (failed) state; the service goes on.
"""

from __future__ import annotations

import functools
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE
from prefect.context import get_run_context
from prefect.states import Completed, Failed, State
from prefect.utilities.annotations import quote

from analytics.catalogue import release_analyses
from analytics.records import ObjectVersion, RunRecord, utcnow
from analytics.store import AggregateStore
from flows.keys import LandingKey, parse_landing_key
from flows.loading import load_file
from flows.objectstore import ObjectVanished, open_store
from flows.settings import Settings
from flows.stages import mask_staged, validate_and_stage
from privacy.budget import PrivacyLoss
from privacy.contract import Contract, find_contract, load_contract
from privacy.errors import (
    BudgetExhausted,
    BudgetTermsChanged,
    ContractError,
    InputRejected,
    PipelineError,
)
from privacy.keys import dataset_key
from privacy.masking import mask_summary
from privacy.reports import PrivacyReport, achieved_k

FLOW_NAME = "process-object"
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Outcome:
    """Counts-only summary of one run; what the CLI prints and the artifact shows."""

    status: str
    dataset: str
    key: str
    reason: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_suppressed: int | None = None
    columns_dropped: int = 0
    columns_pseudonymized: int = 0
    columns_generalized: int = 0
    achieved_k: int | None = None
    #: cell values set to null (unreadable, outside public keys, NaN/inf), then handled by
    #: their column's missing policy; ``notes`` says where (counts only)
    values_nulled: int = 0
    notes: str | None = None
    epsilon_spent: float = 0.0
    delta_spent: float = 0.0
    releases: int = 0
    masked_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run context (direct calls in tests)
        return logging.getLogger(__name__)


def _flow_run_id() -> str:
    ctx = get_run_context()
    fr = getattr(ctx, "flow_run", None)
    return str(fr.id) if fr is not None else "local"


def _flow_run_url(run_id: str) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}" if base and run_id != "local" else None


class CalibrationCacheInStore:
    """DP noise scales depend on the contract only; keep them in the aggregate store."""

    def __init__(self, store: AggregateStore) -> None:
        self.store = store

    def get(self, key: str) -> float | None:
        return self.store.calibration_get(key)

    def put(self, key: str, scale: float) -> None:
        self.store.calibration_put(key, scale)


def _internal_error(exc: BaseException) -> str:
    """Describe an unexpected error by type and code location only: library messages (polars,
    pyarrow, Great Expectations) can quote cell values, so they are never shown or logged."""
    import traceback

    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if "/site-packages/" not in f.filename
    ]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return (
        f"internal error ({type(exc).__name__}{where}); the file stays in landing/ and the "
        "sweep will retry it; please report this with the run id"
    )


def _polars_guard(what: str, exc: Exception) -> InputRejected:
    # polars' messages can quote cell values: keep only the error class
    return InputRejected(f"{what} failed while reading the file ({type(exc).__name__})")


def _sanitized(fn: Callable[P, R]) -> Callable[P, R]:
    """Re-raise unexpected errors without their message before Prefect logs a task failure."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except PipelineError:
            raise
        except pl.exceptions.PolarsError as exc:
            raise _polars_guard(fn.__name__, exc) from None
        except Exception as exc:  # noqa: BLE001 - translated, never swallowed
            raise PipelineError(_internal_error(exc)) from None

    return wrapper


# --------------------------------------------------------------------------- tasks


@task(name="locate", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
@_sanitized
def locate(settings: Settings, bucket: str, key: str, etag: str) -> dict[str, Any]:
    store = open_store(settings)
    info = store.stat(key)
    if info is None:
        return {"exists": False}
    if etag and info.etag != etag:
        _logger().info("object changed since the event; processing its current version")
    return {"exists": True, "etag": info.etag, "size": info.size}


@task(name="mask", cache_policy=NO_CACHE, persist_result=False)
@_sanitized
def mask_object(
    settings: Settings, contract: Contract, landing: LandingKey, etag: str
) -> dict[str, Any]:
    """load -> conform -> validate -> mask -> write masked Parquet; returns counts only."""
    log = _logger()
    store = open_store(settings)
    key = dataset_key(settings.pseudonym_key_bytes(), contract)
    with (
        store.local_copy(landing.key) as path,
        tempfile.TemporaryDirectory(prefix="pa-mask-") as tmp,
    ):
        raw = load_file(
            path, csv_options=contract.csv, max_bytes=settings.max_file_bytes, name=landing.filename
        )
        staged = Path(tmp) / "staged.arrow"
        try:
            report = validate_and_stage(raw, contract, staged)
        except PipelineError:
            raise
        except pl.exceptions.PolarsError as exc:
            raise _polars_guard("validation", exc) from None
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
        out = Path(tmp) / "masked.parquet"
        release_out = Path(tmp) / "release-input.parquet"
        try:
            stats = mask_staged(staged, contract, key, out, report.rows, release_out)
            qis = contract.quasi_identifiers
            k = achieved_k(pl.scan_parquet(out), qis) if qis else None
        except pl.exceptions.PolarsError as exc:
            raise _polars_guard("masking", exc) from None
        summary = mask_summary(contract)
        rows_out = stats.rows_out
        suppressed, dropped_missing = stats.rows_suppressed, stats.rows_dropped_missing
        privacy_report = PrivacyReport.build(
            summary=summary,
            validation=report,
            dataset=contract.dataset,
            contract_version=contract.version,
            rows_in=report.rows,
            rows_out=rows_out,
            rows_suppressed=suppressed,
            rows_dropped_missing=dropped_missing,
            achieved_k=k,
        )
        masked_key = landing.masked_key(etag)
        release_key = landing.release_input_key(etag)
        store.put_file(release_key, release_out)
        store.put_file(masked_key, out)
        store.put_bytes(
            landing.masked_report_key(etag), privacy_report.model_dump_json(indent=2).encode()
        )
        log.info(
            "masked %s -> %s rows (%s suppressed for k-anonymity in the masked file only, %s "
            "dropped for missing values); wrote %s and the release input %s",
            report.rows,
            rows_out,
            suppressed,
            dropped_missing,
            masked_key,
            release_key,
        )
        return {
            "masked_key": masked_key,
            "release_key": release_key,
            "values_nulled": report.values_nulled,
            "notes": notes,
            "rows_in": report.rows,
            "rows_out": rows_out,
            "rows_suppressed": suppressed,
            "rows_dropped_missing": dropped_missing,
            "columns_dropped": len(summary.dropped),
            "columns_pseudonymized": len(summary.pseudonymized),
            "columns_generalized": len(summary.generalized),
            "achieved_k": k,
            "report_markdown": privacy_report.to_markdown(),
        }


@task(name="release", cache_policy=NO_CACHE, persist_result=False)
@_sanitized
def release_and_publish(
    settings: Settings, contract: Contract, obj: ObjectVersion, release_key: str, run: RunRecord
) -> dict[str, Any]:
    """Reserve budget, release through OpenDP from the release input (masked but not
    suppressed: see ``privacy.masking``), publish everything in one transaction."""
    log = _logger()
    store = open_store(settings)
    agg = AggregateStore(settings.aggregate_store_url)
    agg.register_dataset(contract)
    loss = PrivacyLoss(contract.budget.epsilon_per_release, contract.budget.release_delta)
    reservation = agg.reserve(contract, loss, obj=obj, run_id=run.run_id)
    try:
        with store.local_copy(release_key) as path:
            release_set = release_analyses(
                pl.scan_parquet(path), contract, loss, cache=CalibrationCacheInStore(agg)
            )
    except BaseException:
        agg.cancel(reservation)
        raise
    run.status = "completed"
    run.epsilon_spent = release_set.loss.epsilon
    run.delta_spent = release_set.loss.delta
    run.finished_at = utcnow()
    published = agg.publish(reservation, release_set, run)
    if not published:
        log.info("this object version was published by another run meanwhile; nothing new")
        return {"published": False}
    values = sum(len(r.values) for r in release_set.releases)
    log.info(
        "published %s releases (%s values) at %s",
        len(release_set.releases),
        values,
        release_set.loss,
    )
    return {
        "published": True,
        "releases": len(release_set.releases),
        "values": values,
        "epsilon": release_set.loss.epsilon,
        "delta": release_set.loss.delta,
        "insights": [i for r in release_set.releases for i in r.insights][:8],
    }


@task(
    name="quarantine", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False
)
@_sanitized
def quarantine(settings: Settings, landing: LandingKey, report: dict[str, Any]) -> str:
    store = open_store(settings)
    if store.stat(landing.key) is not None:
        store.move(landing.key, landing.quarantine_key)
    store.put_bytes(landing.quarantine_report_key, json.dumps(report, indent=2).encode())
    return landing.quarantine_key


@task(name="tidy", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE, persist_result=False)
@_sanitized
def remove_raw(settings: Settings, landing: LandingKey, etag: str) -> bool:
    """Data minimisation: the raw file leaves landing/ once its masked form is safe."""
    if settings.keep_raw:
        return False
    store = open_store(settings)
    info = store.stat(landing.key)
    if info is not None and info.etag == etag:  # never delete a newer version dropped meanwhile
        store.delete(landing.key)
        return True
    return False


# --------------------------------------------------------------------------- the flow


def _artifact(outcome: Outcome, privacy_md: str | None) -> None:
    rows = [
        ("status", outcome.status),
        ("dataset", outcome.dataset),
        ("object", f"`{outcome.key}`"),
        ("rows in", outcome.rows_in),
        ("rows out (masked)", outcome.rows_out),
        ("rows suppressed or dropped", outcome.rows_suppressed),
        ("columns dropped", outcome.columns_dropped),
        ("columns pseudonymized", outcome.columns_pseudonymized),
        ("columns generalized", outcome.columns_generalized),
        ("achieved k", outcome.achieved_k),
        ("values set to null", outcome.values_nulled),
        ("releases published", outcome.releases),
        ("ε spent", f"{outcome.epsilon_spent:g}"),
        ("δ spent", f"{outcome.delta_spent:g}"),
    ]
    md = "### Privacy-analytics run\n\n| | |\n|---|---|\n"
    md += "\n".join(f"| {k} | {'–' if v is None else v} |" for k, v in rows)
    if outcome.reason:
        md += f"\n\n**Reason:** {outcome.reason}\n"
    if outcome.notes:
        md += f"\n\n**Values:** {outcome.notes}\n"
    if privacy_md:
        md += "\n\n" + privacy_md
    try:
        create_markdown_artifact(
            markdown=md,
            key=f"run-{outcome.dataset.lower().replace('_', '-')}",
            description="counts-only summary of this run",
        )
    except Exception:  # noqa: BLE001 - an artifact is a convenience, never a reason to fail a run
        logging.getLogger(__name__).warning("could not create the run artifact")


_COUNTS = (
    "rows_in",
    "rows_out",
    "rows_suppressed",
    "columns_dropped",
    "columns_pseudonymized",
    "columns_generalized",
)


def run_pipeline(
    bucket: str,
    key: str,
    etag: str = "",
    size: int | None = None,
    contract_path: str | None = None,
    settings: Settings | None = None,
) -> tuple[Outcome, State[Any] | None]:
    """The body of the flow; returns the outcome and the final state to report."""
    settings = settings or Settings()
    log = _logger()
    landing = parse_landing_key(key)
    dataset = landing.dataset
    run_id = _flow_run_id()
    outcome = Outcome(status="running", dataset=dataset, key=key)

    located = locate(quote(settings), bucket, key, etag)
    agg = AggregateStore(settings.aggregate_store_url)
    if not located["exists"]:
        obj = ObjectVersion(bucket, key, etag, size)
        prior = agg.find_published(obj) if etag else None
        outcome.status = "duplicate" if prior else "missing"
        outcome.reason = (
            f"already published by run {prior}"
            if prior
            else "the object is no longer in landing/ (processed or removed meanwhile)"
        )
        log.info(outcome.reason)
        return outcome, Completed(name="Skipped", message=outcome.reason)
    obj = ObjectVersion(bucket, key, located["etag"], located["size"])
    prior = agg.find_published(obj)
    if prior:
        outcome.status, outcome.reason = "duplicate", f"already published by run {prior}"
        log.info("object version already published by run %s: nothing to do", prior)
        if not settings.keep_raw:
            remove_raw(quote(settings), quote(landing), obj.etag)
        return outcome, Completed(name="Skipped", message=outcome.reason)

    run = RunRecord(run_id=run_id, dataset=dataset, obj=obj, flow_run_url=_flow_run_url(run_id))
    agg.record_run(run)
    privacy_md: str | None = None
    try:
        try:
            contract = (
                load_contract(Path(contract_path), dataset)
                if contract_path
                else find_contract(settings.contracts_dir, dataset)
            )
        except ContractError as exc:
            raise InputRejected(str(exc)) from None
        # the contract's budget terms must be the pinned ones before anything is computed;
        # otherwise the file waits in landing/ until an operator runs `budget set`
        agg.register_dataset(contract)
        masked = mask_object(quote(settings), quote(contract), quote(landing), obj.etag)
        privacy_md = masked.pop("report_markdown", None)
        for name in _COUNTS:
            setattr(outcome, name, masked[name])
            setattr(run, name, masked[name])
        outcome.achieved_k, outcome.masked_key = masked["achieved_k"], masked["masked_key"]
        outcome.values_nulled, outcome.notes = masked["values_nulled"], masked["notes"]
        run.values_nulled, run.notes = masked["values_nulled"], masked["notes"]
        try:
            published = release_and_publish(
                quote(settings), quote(contract), quote(obj), masked["release_key"], quote(run)
            )
        except BudgetTermsChanged:
            raise  # terms changed between registration and reservation: handled below
        except BudgetExhausted as exc:
            outcome.status, outcome.reason = "budget_exhausted", str(exc)
            run.status, run.reason, run.finished_at = "budget_exhausted", str(exc), utcnow()
            agg.record_run(run)
            log.warning("release refused: %s", exc)
            remove_raw(quote(settings), quote(landing), obj.etag)
            _artifact(outcome, privacy_md)
            return outcome, Completed(name="BudgetExhausted", message=str(exc))
        if not published["published"]:
            outcome.status, outcome.reason = "duplicate", "published by a concurrent run"
            return outcome, Completed(name="Skipped", message=outcome.reason)
        outcome.status = "completed"
        outcome.releases = published["releases"]
        outcome.epsilon_spent = published["epsilon"]
        outcome.delta_spent = published["delta"]
        remove_raw(quote(settings), quote(landing), obj.etag)
        _artifact(outcome, privacy_md)
        return outcome, Completed(
            message=f"published {outcome.releases} releases at ε={outcome.epsilon_spent:g}"
        )
    except BudgetTermsChanged as exc:
        reason = str(exc)
        outcome.status, outcome.reason = "terms_changed", reason
        run.status, run.reason, run.finished_at = "terms_changed", reason, utcnow()
        agg.record_run(run)
        log.error("refused, the file stays in landing/ until the terms agree: %s", reason)
        _artifact(outcome, privacy_md)
        return outcome, Failed(name="TermsChanged", message=reason)
    except ObjectVanished as exc:
        prior = agg.find_published(obj)
        outcome.status = "duplicate" if prior else "missing"
        outcome.reason = f"already published by run {prior}" if prior else str(exc)
        run.status, run.reason, run.finished_at = (
            outcome.status if prior else "failed",
            outcome.reason,
            utcnow(),
        )
        if not prior:
            agg.record_run(run)
        log.info("%s", outcome.reason)
        return outcome, Completed(name="Skipped", message=outcome.reason)
    except InputRejected as exc:
        reason = str(exc)
        outcome.status, outcome.reason = "rejected", reason
        report = {k: v for k, v in asdict(outcome).items() if k != "extra"}
        quarantine(quote(settings), quote(landing), report)
        run.status, run.reason, run.finished_at = "rejected", reason, utcnow()
        agg.record_run(run)
        log.error("rejected %s: %s; moved to %s", key, reason, landing.quarantine_key)
        _artifact(outcome, privacy_md)
        return outcome, Failed(name="Rejected", message=reason)
    except Exception as exc:  # noqa: BLE001 - the one place a run's errors become a state
        reason = str(exc) if isinstance(exc, PipelineError) else _internal_error(exc)
        outcome.status, outcome.reason = "failed", reason
        exc = PipelineError(reason)
        run.status, run.reason, run.finished_at = "failed", str(exc), utcnow()
        try:
            agg.record_run(run)
        except PipelineError:
            log.exception("could not record the failed run")
        log.error("run failed, the file stays in landing/ for a retry: %s", exc)
        return outcome, Failed(message=str(exc))


@flow(
    name=FLOW_NAME,
    description="Validate, mask and release one object dropped into landing/<dataset>/.",
    persist_result=False,
    log_prints=False,
    validate_parameters=True,
)
def process_object(
    bucket: str,
    key: str,
    etag: str = "",
    size: int | None = None,
    contract_path: str | None = None,
) -> State[Any]:
    """One flow run per object version: bucket/key/etag identify it (no data in parameters)."""
    _, state = run_pipeline(bucket, key, etag, size, contract_path)
    assert state is not None
    return state
