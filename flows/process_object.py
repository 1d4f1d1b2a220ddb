"""The `process-object` flow: one run per object version dropped into `landing/`.

    locate   stat the object; an object version already published is a duplicate: stop
    contract find the dataset's contract (missing or broken: quarantine with a how-to)
    mask     load -> conform -> validate (Great Expectations) -> mask -> masked Parquet
    release  reserve budget -> OpenDP releases -> publish values, ledger and run together
    tidy     remove the raw file from landing/ (unless PA_KEEP_RAW)

The tasks (``flows.tasks``) exchange object keys and counts-only results, never frames;
the run fills in one counts-only ``flows.outcome.Outcome``, which names its final state.
Rejected input is moved intact to quarantine/ with a counts-only report and the run ends
in a `Rejected` (failed) state; the service goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.context import get_run_context
from prefect.states import Completed, Failed, State
from prefect.utilities.annotations import quote

from analytics.store import ObjectVersion
from flows.concurrency import dataset_of, dataset_slot
from flows.guards import internal_error, run_logger
from flows.keys import LandingKey, parse_landing_key
from flows.objectstore import ObjectVanished
from flows.outcome import Outcome
from flows.release_dataset import start_dataset_release
from flows.resources import RunResources
from flows.settings import Settings
from flows.tasks import locate, mask_object, quarantine, release_and_publish, remove_raw
from privacy.contract import Contract, find_contract, load_contract
from privacy.errors import (
    BudgetExhausted,
    BudgetTermsChanged,
    ContractError,
    InputRejected,
    PipelineError,
)

FLOW_NAME = "process-object"


def _flow_run_id() -> str:
    ctx = get_run_context()
    fr = getattr(ctx, "flow_run", None)
    return str(fr.id) if fr is not None else "local"


def _flow_run_url(run_id: str) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{run_id}" if base and run_id != "local" else None


def _artifact(outcome: Outcome) -> None:
    try:
        create_markdown_artifact(
            markdown=outcome.artifact_markdown(),
            key=f"run-{outcome.dataset.lower().replace('_', '-')}",
            description="counts-only summary of this run",
        )
    except Exception:  # noqa: BLE001 - an artifact is a convenience, never a reason to fail a run
        logging.getLogger(__name__).warning("could not create the run artifact")


def final_state(outcome: Outcome) -> State[Any]:
    """The flow run's final state, named for the outcome (the Prefect UI shows it); it
    carries the outcome, for a caller such as `privacy-analytics process`."""
    message = outcome.message
    match outcome.status:
        case "completed":
            return Completed(message=message, data=outcome)
        case "masked":
            return Completed(name="Masked", message=message, data=outcome)
        case "duplicate" | "missing":
            return Completed(name="Skipped", message=message, data=outcome)
        case "budget_exhausted":
            return Completed(name="BudgetExhausted", message=message, data=outcome)
        case "terms_changed":
            return Failed(name="TermsChanged", message=message, data=outcome)
        case "rejected":
            return Failed(name="Rejected", message=message, data=outcome)
    return Failed(message=message, data=outcome)


# --------------------------------------------------------------------------- the run's steps


def _gone(res: RunResources, event: ObjectVersion, outcome: Outcome) -> Outcome:
    """The object is no longer in landing/: published meanwhile, or removed."""
    prior = res.aggregates.find_published(event) if event.etag else None
    if prior:
        outcome.end("duplicate", f"already published by run {prior}")
    else:
        outcome.end("missing", "the object is no longer in landing/ (processed or removed meanwhile)")
    run_logger().info(outcome.reason)
    return outcome


def _already_published(
    res: RunResources, landing: LandingKey, obj: ObjectVersion, prior: str, outcome: Outcome
) -> Outcome:
    run_logger().info("object version already published by run %s: nothing to do", prior)
    if not res.settings.keep_raw:
        remove_raw(quote(res), quote(landing), obj.etag)
    return outcome.end("duplicate", f"already published by run {prior}")


def _contract(settings: Settings, dataset: str, contract_path: str | None) -> Contract:
    try:
        if contract_path:
            return load_contract(Path(contract_path), dataset)
        return find_contract(settings.contracts_dir, dataset)
    except ContractError as exc:
        raise InputRejected(str(exc)) from None


def _release(
    res: RunResources, contract: Contract, landing: LandingKey, obj: ObjectVersion,
    outcome: Outcome,
) -> Outcome:  # fmt: skip
    """Release and publish what the mask task wrote, then tidy landing/."""
    assert outcome.masked is not None
    if not contract.release.per_file:
        return _masked_only(res, contract, landing, obj, outcome)
    run = outcome.run_record()
    try:  # BudgetTermsChanged (terms changed since registration) is the caller's to handle
        published = release_and_publish(
            quote(res), quote(contract), quote(obj), outcome.masked.release_key, quote(run)
        )
    except BudgetExhausted as exc:
        outcome.end("budget_exhausted", str(exc))
        res.aggregates.record_run(outcome.run_record())
        run_logger().warning("release refused: %s", exc)
        remove_raw(quote(res), quote(landing), obj.etag)
        _artifact(outcome)
        return outcome
    if published is None:
        return outcome.end("duplicate", "published by a concurrent run")
    outcome.published = published
    outcome.end("completed")
    outcome.dataset_release_due = _dataset_release_due(res, contract)
    try:
        remove_raw(quote(res), quote(landing), obj.etag)
    except PipelineError as exc:  # published all the same; the sweep tidies it later
        run_logger().warning("published; the raw file stays in landing/ for now: %s", exc)
    _artifact(outcome)
    return outcome


def _masked_only(
    res: RunResources, contract: Contract, landing: LandingKey, obj: ObjectVersion,
    outcome: Outcome,
) -> Outcome:  # fmt: skip
    """``release.per_file: false``: the file joins the dataset without a release of its
    own; dataset releases (`release-dataset`) read it."""
    outcome.end("masked", "validated and masked; this dataset releases over all its files "
                "(release.per_file: false), with release-dataset")
    if not res.aggregates.record_masked(outcome.run_record()):
        return outcome.end("duplicate", "processed by a concurrent run")
    run_logger().info("%s", outcome.reason)
    try:
        remove_raw(quote(res), quote(landing), obj.etag)
    except PipelineError as exc:  # masked and recorded all the same; the sweep tidies it later
        run_logger().warning("masked; the raw file stays in landing/ for now: %s", exc)
    _artifact(outcome)
    outcome.dataset_release_due = _dataset_release_due(res, contract)
    return outcome


def _dataset_release_due(res: RunResources, contract: Contract) -> bool:
    every = contract.release.every_files
    if every is None:
        return False
    try:
        since = res.aggregates.files_since_dataset_release(contract.dataset)
    except PipelineError as exc:  # the file is done; the next one, or the schedule, retries
        run_logger().warning("could not count the files since the last dataset release: %s", exc)
        return False
    if since >= every:
        run_logger().info("%s file(s) since the last dataset release (release.every_files: "
                          "%s): starting release-dataset", since, every)
    return since >= every


# --------------------------------------------------------------------------- how a run ends


def _terms_changed(res: RunResources, outcome: Outcome, exc: BudgetTermsChanged) -> Outcome:
    reason = str(exc)
    outcome.end("terms_changed", reason)
    res.aggregates.record_run(outcome.run_record())
    run_logger().error("refused, the file stays in landing/ until the terms agree: %s", reason)
    _artifact(outcome)
    return outcome


def _vanished(
    res: RunResources, obj: ObjectVersion, outcome: Outcome, exc: ObjectVanished
) -> Outcome:
    prior = res.aggregates.find_published(obj)
    if prior:
        outcome.end("duplicate", f"already published by run {prior}")
    else:
        outcome.end("missing", str(exc))
        res.aggregates.record_run(outcome.run_record())
    run_logger().info("%s", outcome.reason)
    return outcome


def _rejected(
    res: RunResources, landing: LandingKey, outcome: Outcome, exc: InputRejected
) -> Outcome:
    reason = str(exc)
    outcome.end("rejected", reason)
    quarantine(quote(res), quote(landing), outcome.report())
    res.aggregates.record_run(outcome.run_record())
    run_logger().error(
        "rejected %s: %s; moved to %s", outcome.key, reason, landing.quarantine_key
    )
    _artifact(outcome)
    return outcome


def _failed(res: RunResources, outcome: Outcome, exc: Exception) -> Outcome:
    reason = str(exc) if isinstance(exc, PipelineError) else internal_error(exc)
    outcome.end("failed", reason)
    log = run_logger()
    try:
        res.aggregates.record_run(outcome.run_record())
    except PipelineError:
        log.exception("could not record the failed run")
    log.error("run failed, the file stays in landing/ for a retry: %s", reason)
    return outcome


def _process(
    res: RunResources, landing: LandingKey, obj: ObjectVersion, contract_path: str | None,
    outcome: Outcome,
) -> Outcome:  # fmt: skip
    """contract -> mask -> release; every error ends the run with an outcome."""
    try:
        contract = _contract(res.settings, landing.dataset, contract_path)
        # the contract's budget terms must be the pinned ones before anything is computed;
        # otherwise the file waits in landing/ until an operator runs `budget set`
        res.aggregates.register_dataset(contract)
        outcome.masked = mask_object(quote(res), quote(contract), quote(landing), obj.etag)
        return _release(res, contract, landing, obj, outcome)
    except BudgetTermsChanged as exc:
        return _terms_changed(res, outcome, exc)
    except ObjectVanished as exc:
        return _vanished(res, obj, outcome, exc)
    except InputRejected as exc:
        return _rejected(res, landing, outcome, exc)
    except Exception as exc:  # noqa: BLE001 - the one place a run's errors become an outcome
        return _failed(res, outcome, exc)


# --------------------------------------------------------------------------- the flow


def run_pipeline(
    event: ObjectVersion, contract_path: str | None = None, settings: Settings | None = None
) -> Outcome:
    """The body of the flow: one run on the object version an event names."""
    settings = settings or Settings()
    landing = parse_landing_key(event.key)
    run_id = _flow_run_id()
    outcome = Outcome(landing.dataset, event.key, run_id, _flow_run_url(run_id))
    with RunResources(settings) as res:
        obj = locate(quote(res), quote(event))
        if obj is None:
            return _gone(res, event, outcome)
        prior = res.aggregates.find_published(obj)
        if prior:
            return _already_published(res, landing, obj, prior, outcome)
        outcome.begin(obj)
        res.aggregates.record_run(outcome.run_record())
        return _process(res, landing, obj, contract_path, outcome)


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
    settings = Settings()
    # one slot of the dataset's Prefect concurrency limit (flows/concurrency.py)
    with dataset_slot(settings, dataset_of(key)):
        outcome = run_pipeline(ObjectVersion(bucket, key, etag, size), contract_path, settings)
    if outcome.dataset_release_due:  # once the slot is free: the dataset release takes it
        start_dataset_release(outcome.dataset, outcome.obj, contract_path)
    return final_state(outcome)
