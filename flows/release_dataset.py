"""The `release-dataset` flow: the contract's analyses over a dataset as a whole.

    files    the dataset's files: the newest version of each object a run validated and
             masked (``files: append``: all of them; ``files: snapshot``: the latest)
    read     their release inputs (masked, never suppressed) as one lazy scan
    release  reserve -> OpenDP releases over the union, each person's rows bounded over all
             files by ``release.max_rows_per_unit`` -> publish values, ledger, run and the
             files read, together

A person's rows accumulate across files; OpenDP truncates them over the union, so each
person's whole contribution pays one bounded share of ε, and the intervals shrink as people
accrue (pooling per-file releases instead makes the noise grow with the number of files).

One release per set of files: the release over the same files again is a duplicate that
spends nothing, so a schedule that fires with no new file costs nothing. It runs on the
contract's ``release.schedule`` (the served deployment's schedules), after every
``release.every_files`` files (`process-object` starts it), from the Prefect UI, or with
``privacy-analytics release-dataset NAME``.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.context import get_run_context
from prefect.states import Completed, Failed, State

from analytics.analyses import release_analyses
from analytics.store import ObjectVersion, RunRecord, utcnow
from analytics.store.records import Coverage, DatasetFile
from flows.concurrency import dataset_slot
from flows.guards import internal_error, run_logger
from flows.keys import parse_landing_key
from flows.resources import RunResources
from flows.settings import Settings
from flows.tasks import CalibrationCacheInStore
from privacy.budget import epsilon_alone
from privacy.contract import Contract, find_contract, load_contract
from privacy.errors import BudgetExhausted, BudgetTermsChanged, ContractError, PipelineError
from privacy.keys import KEY_ID_METADATA, dataset_key, key_id
from privacy.names import check_dataset

FLOW_NAME = "release-dataset"


@dataclass
class DatasetOutcome:
    """One dataset release, counts only: what the CLI prints and the run artifact shows."""

    dataset: str
    run_id: str
    status: str = "running"
    reason: str | None = None
    files: int = 0
    files_missing: int = 0
    releases: int = 0
    epsilon: float = 0.0
    delta: float = 0.0
    started_at: datetime = field(default_factory=utcnow)

    def end(self, status: str, reason: str | None = None) -> DatasetOutcome:
        self.status, self.reason = status, reason
        return self

    @property
    def message(self) -> str:
        if self.status == "completed":
            n = self.files
            return (f"published {self.releases} releases over {n} file{'' if n == 1 else 's'} "
                    f"at ε={self.epsilon:g}")
        return self.reason or ""

    def markdown(self) -> str:
        rows = [("status", self.status), ("dataset", self.dataset), ("files read", self.files),
                ("files whose release input is missing", self.files_missing),
                ("releases published", self.releases), ("ε spent", f"{self.epsilon:g}"),
                ("δ spent", f"{self.delta:g}")]
        md = "### Dataset release\n\n| | |\n|---|---|\n"
        md += "\n".join(f"| {k} | {v} |" for k, v in rows)
        return md + (f"\n\n**Reason:** {self.reason}\n" if self.reason else "")


def _contract(settings: Settings, dataset: str, contract_path: str | None) -> Contract:
    if contract_path:
        return load_contract(Path(contract_path), dataset)
    return find_contract(settings.contracts_dir, dataset)


def release_key(f: DatasetFile) -> str:
    """Where the release input of a dataset's file lies."""
    return parse_landing_key(f.obj.key).release_input_key(f.obj.etag)


def _chosen(contract: Contract, files: list[DatasetFile]) -> list[DatasetFile]:
    return files[-1:] if contract.files == "snapshot" else files


def _readable(res: RunResources, files: list[DatasetFile]) -> tuple[list[DatasetFile], int]:
    """The files whose release input is still in the store, and how many are not."""
    present = [f for f in files if res.objects.stat(release_key(f)) is not None]
    return present, len(files) - len(present)


def _union(paths: list[Path], window: tuple[str, date] | None = None) -> pl.LazyFrame:
    """The release inputs as one lazy scan (columns a contract version lacked are nulls),
    with ``window`` (time column, first day) only the rows from that day on: a row-wise
    filter with a public cutoff, so each person's rows are kept or left out on their own."""
    scans = [pl.scan_parquet(p) for p in paths]
    union = scans[0] if len(scans) == 1 else pl.concat(scans, how="diagonal_relaxed")
    if window is None:
        return union
    column, since = window
    return union.filter(pl.col(column).cast(pl.Date, strict=False) >= pl.lit(since))


def _release(
    res: RunResources, contract: Contract, paths: list[Path], out: DatasetOutcome,
    run: RunRecord, coverage: Coverage,
) -> DatasetOutcome:  # fmt: skip
    agg = res.aggregates
    scoped = contract.for_dataset_release(len(paths))
    loss = scoped.budget.release_loss
    reservation = agg.reserve(contract, loss, obj=coverage.obj, run_id=out.run_id)
    try:
        window = contract.release.window
        cut = None if window is None or coverage.since is None else (window.column, coverage.since)
        release_set = release_analyses(_union(paths, cut), scoped, loss,
                                       cache=CalibrationCacheInStore(agg))
    except BaseException:
        agg.cancel(reservation)
        raise
    spent = release_set.loss
    eps = epsilon_alone(spent, contract.budget.delta)  # under zCDP: its ρ converted, alone
    done = replace(run, status="completed", epsilon_spent=eps,
                   delta_spent=spent.delta, finished_at=utcnow())
    if not agg.publish(reservation, release_set, done, coverage):
        return out.end("duplicate", "a release over these files was published meanwhile")
    out.releases, out.epsilon, out.delta = len(release_set.releases), eps, spent.delta
    return out.end("completed")


def _same_key(
    res: RunResources, contract: Contract, files: list[DatasetFile], stack: ExitStack
) -> tuple[list[DatasetFile], list[Path], int]:
    """The files masked under the dataset's current pseudonym key, their local copies, and
    how many were masked under another (``privacy.keys.key_id``): after a key rotation one
    person would be two units to OpenDP, so files of another key are never read together
    with the current ones."""
    want = key_id(dataset_key(res.settings.pseudonym_key_bytes(), contract))
    kept: list[tuple[DatasetFile, Path]] = []
    for f in files:
        path = stack.enter_context(res.objects.local_copy(release_key(f)))
        if pl.read_parquet_metadata(path).get(KEY_ID_METADATA) == want:
            kept.append((f, path))
    return [f for f, _ in kept], [p for _, p in kept], len(files) - len(kept)


def run_dataset_release(
    dataset: str, contract_path: str | None, settings: Settings, run_id: str,
    flow_run_url: str | None = None,
) -> DatasetOutcome:  # fmt: skip
    """The body of the flow: one dataset release of ``dataset``; every error ends it with
    an outcome."""
    out = DatasetOutcome(dataset, run_id)
    log = run_logger()
    run: RunRecord | None = None
    with RunResources(settings) as res, ExitStack() as stack:
        try:
            contract = _contract(settings, dataset, contract_path)
            res.aggregates.register_dataset(contract)
            files, out.files_missing = _readable(
                res, _chosen(contract, res.aggregates.dataset_files(dataset)))
            if out.files_missing:
                log.warning("%s file(s) of dataset '%s' have no release input any more: left "
                            "out of this release", out.files_missing, dataset)
            files, paths, other = _same_key(res, contract, files, stack)
            if other:
                log.warning("%s file(s) of dataset '%s' were masked under another pseudonym "
                            "key (rotated, or masked before key ids were recorded): left out "
                            "of this release", other, dataset)
            if not files:
                return out.end("skipped", f"dataset '{dataset}' has no validated file under "
                               f"its current pseudonym key yet: drop one into landing/{dataset}/"
                               " first")
            out.files = len(files)
            unit = contract.dataset_rows_per_unit if contract.privacy_unit else None
            window = contract.release.window
            since = window.since(utcnow().date()) if window is not None else None
            coverage = Coverage(dataset, contract.files, tuple(f.obj for f in files), unit,
                                since)
            prior = res.aggregates.find_published(coverage.obj)
            if prior:
                return out.end("skipped", f"no new file since the dataset release of run "
                               f"{prior} (it read the same {len(files)} file(s)); nothing spent")
            run = RunRecord(run_id, dataset, coverage.obj, flow_run_url=flow_run_url,
                            rows_in=sum(f.rows or 0 for f in files), started_at=out.started_at)
            res.aggregates.record_run(run)
            log.info("releasing dataset '%s' over %s file(s) (%s), at most %s row(s) per person",
                     dataset, len(files), contract.files, contract.dataset_rows_per_unit)
            return _release(res, contract, paths, out, run, coverage)
        except BudgetExhausted as exc:
            out.end("budget_exhausted", str(exc))
        except (BudgetTermsChanged, ContractError) as exc:
            out.end("refused", str(exc))
        except Exception as exc:  # noqa: BLE001 - the one place a run's errors become an outcome
            out.end("failed", str(exc) if isinstance(exc, PipelineError) else internal_error(exc))
        if run is not None:
            status = "failed" if out.status in ("refused", "failed") else out.status
            res.aggregates.record_run(replace(run, status=status, reason=out.reason,
                                              finished_at=utcnow()))
    return out


def final_state(out: DatasetOutcome) -> State[Any]:
    match out.status:
        case "completed":
            return Completed(message=out.message, data=out)
        case "skipped" | "duplicate":
            return Completed(name="Skipped", message=out.message, data=out)
        case "budget_exhausted":
            return Completed(name="BudgetExhausted", message=out.message, data=out)
        case "refused":
            return Failed(name="Refused", message=out.message, data=out)
    return Failed(message=out.message, data=out)


def _run_id_and_url() -> tuple[str, str | None]:
    from flows.process_object import _flow_run_id, _flow_run_url

    run_id = _flow_run_id()
    return run_id, _flow_run_url(run_id)


def start_dataset_release(
    dataset: str, after: ObjectVersion | None, contract_path: str | None = None
) -> None:
    """Start a dataset release of ``dataset`` (``release.every_files``): a run of the
    `release-dataset` deployment when the caller is a deployment's run (it queues, and
    shows, in Prefect), else, for an ad-hoc run (`privacy-analytics process`), right here.
    One run per file that made it due (``after``): a re-delivered event starts none more.
    A failure to start it never fails the caller's run: the schedule or the next file
    starts it."""
    log = run_logger()
    try:
        ctx = get_run_context()
        fr = getattr(ctx, "flow_run", None)
        params: dict[str, Any] = {"dataset": dataset}
        if contract_path:
            params["contract_path"] = contract_path
        if fr is None or fr.deployment_id is None:
            release_dataset(**params)
            return
        from prefect.deployments import run_deployment

        key = f"every-files:{dataset}:{after.etag if after else ''}"
        run = run_deployment(f"{FLOW_NAME}/{FLOW_NAME}", parameters=params, timeout=0,
                             as_subflow=False, idempotency_key=key)
        log.info("started release-dataset run %s for dataset '%s'", run.name, dataset)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("could not start a dataset release of '%s' (%s); the schedule or the next "
                    "file will", dataset, type(exc).__name__)


@flow(
    name=FLOW_NAME,
    description="Release the contract's analyses over the dataset as a whole (every file so "
    "far, or the latest snapshot).",
    persist_result=False,
    log_prints=False,
    validate_parameters=True,
)
def release_dataset(dataset: str, contract_path: str | None = None) -> State[Any]:
    """One dataset release of ``dataset`` (parameters hold its name only, no data)."""
    settings = Settings()
    check_dataset(dataset)
    run_id, url = _run_id_and_url()
    with dataset_slot(settings, dataset):
        out = run_dataset_release(dataset, contract_path, settings, run_id, url)
    log = run_logger()
    (log.info if out.status in ("completed", "skipped", "duplicate") else log.warning)(
        "%s: %s", out.status, out.message)
    try:
        create_markdown_artifact(markdown=out.markdown(),
                                 key=f"dataset-release-{dataset.lower().replace('_', '-')}",
                                 description="counts-only summary of this dataset release")
    except Exception:  # noqa: BLE001 - an artifact is a convenience, never a reason to fail
        log.warning("could not create the run artifact")
    return final_state(out)
