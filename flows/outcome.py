"""One `process-object` run's outcome: the single counts-only record a run fills in as it
goes (with what its mask and release tasks return), and what is read off it: the aggregate
store's run record, the quarantine report and the run artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from analytics.store import ObjectVersion, RunRecord, RunStatus, utcnow

#: the store's run statuses, and ``missing``: the object left landing/ before the run read it
Status = Literal[RunStatus, "missing"]


@dataclass(frozen=True)
class Masked:
    """What the mask task wrote: object keys and counts only."""

    masked_key: str
    release_key: str
    rows_in: int
    rows_out: int
    #: rows the masked file lacks for k-anonymity / l-diversity (the release input has them)
    rows_suppressed: int
    rows_dropped_missing: int
    columns_dropped: int
    columns_pseudonymized: int
    columns_generalized: int
    achieved_k: int | None
    #: cell values set to null (unreadable, outside public keys, NaN/inf), then handled by
    #: their column's missing policy; ``notes`` says where (counts only)
    values_nulled: int
    notes: str | None
    #: the privacy report in Markdown, for the run artifact
    report_markdown: str


@dataclass(frozen=True)
class Published:
    """What the release task published."""

    releases: int
    values: int
    epsilon: float
    delta: float


#: the quarantine report's mask counts of a run that masked nothing (in the report's order)
_NOT_MASKED: dict[str, Any] = {
    "rows_in": None,
    "rows_out": None,
    "rows_suppressed": None,
    "columns_dropped": 0,
    "columns_pseudonymized": 0,
    "columns_generalized": 0,
    "achieved_k": None,
    "values_nulled": 0,
    "notes": None,
}
#: the mask counts the aggregate store keeps with a run
#: what the run record takes from the outcome as it is
_RUN_FIELDS = ("run_id", "dataset", "obj", "epsilon_spent", "delta_spent", "reason", "flow_run_url",
               "started_at", "finished_at")
_RUN_COUNTS = (
    "rows_in",
    "rows_out",
    "rows_suppressed",
    "columns_dropped",
    "columns_pseudonymized",
    "columns_generalized",
    "values_nulled",
    "notes",
)


@dataclass
class Outcome:
    """One run, counts only: what the CLI reports, the artifact shows and the store keeps."""

    dataset: str
    key: str
    run_id: str
    flow_run_url: str | None = None
    status: Status = "running"
    reason: str | None = None
    #: the object version the run processes, once located
    obj: ObjectVersion | None = None
    masked: Masked | None = None
    published: Published | None = None
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    #: ``release.every_files`` files have arrived since the last dataset release: the flow
    #: starts one once this run's dataset slot is free
    dataset_release_due: bool = False

    def begin(self, obj: ObjectVersion) -> None:
        """The run starts on ``obj`` (its run record is written from here on)."""
        self.obj, self.started_at = obj, utcnow()

    def end(self, status: Status, reason: str | None = None) -> Outcome:
        self.status, self.reason, self.finished_at = status, reason, utcnow()
        return self

    @property
    def epsilon_spent(self) -> float:
        return self.published.epsilon if self.published else 0.0

    @property
    def delta_spent(self) -> float:
        return self.published.delta if self.published else 0.0

    @property
    def message(self) -> str:
        """One line: what the run published, or why it published nothing."""
        if self.status == "completed" and self.published:
            return f"published {self.published.releases} releases at ε={self.epsilon_spent:g}"
        return self.reason or ""

    def report(self) -> dict[str, Any]:
        """The counts-only summary written next to a quarantined file."""
        m = self.masked
        counts = _NOT_MASKED if m is None else {name: getattr(m, name) for name in _NOT_MASKED}
        return {
            "status": self.status,
            "dataset": self.dataset,
            "key": self.key,
            "reason": self.reason,
            **counts,
            "epsilon_spent": self.epsilon_spent,
            "delta_spent": self.delta_spent,
            "releases": self.published.releases if self.published else 0,
            "masked_key": m.masked_key if m else None,
        }

    def run_record(self) -> RunRecord:
        """The run as the aggregate store keeps it (a ``missing`` object: ``failed``)."""
        if self.obj is None:
            raise ValueError("a run is recorded once its object version is located")
        m = self.masked
        counts = {} if m is None else {name: getattr(m, name) for name in _RUN_COUNTS}
        same = {name: getattr(self, name) for name in _RUN_FIELDS}
        status = "failed" if self.status == "missing" else self.status
        return RunRecord(**same, status=status, **counts)

    def artifact_markdown(self) -> str:
        """The run artifact: the counts, the reason, the value notes and the privacy report."""
        r = self.report()
        rows = [
            ("status", r["status"]),
            ("dataset", r["dataset"]),
            ("object", f"`{r['key']}`"),
            ("rows in", r["rows_in"]),
            ("rows out (masked)", r["rows_out"]),
            ("rows suppressed or dropped", r["rows_suppressed"]),
            ("columns dropped", r["columns_dropped"]),
            ("columns pseudonymized", r["columns_pseudonymized"]),
            ("columns generalized", r["columns_generalized"]),
            ("achieved k", r["achieved_k"]),
            ("values set to null", r["values_nulled"]),
            ("releases published", r["releases"]),
            ("ε spent", f"{r['epsilon_spent']:g}"),
            ("δ spent", f"{r['delta_spent']:g}"),
        ]
        md = "### Privacy-analytics run\n\n| | |\n|---|---|\n"
        md += "\n".join(f"| {k} | {'–' if v is None else v} |" for k, v in rows)
        if self.reason:
            md += f"\n\n**Reason:** {self.reason}\n"
        if r["notes"]:
            md += f"\n\n**Values:** {r['notes']}\n"
        if self.masked and self.masked.report_markdown:
            md += "\n\n" + self.masked.report_markdown
        return md
