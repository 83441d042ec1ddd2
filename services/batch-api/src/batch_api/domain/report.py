"""A batch report folded from its jobs, one job at a time: counts per state, success rate,
duration statistics, metric totals and the first failures. Pure: no I/O."""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from contracts.vocabulary import SEVERITIES, Severity, default_severity

MAX_FAILED_LISTED = 1000
MAX_WARNINGS_LISTED = 1000
# A job skipped without a view: it never started (`stop_on_error`, `job_status_of`).
STOPPED_FIRST = "not started: the batch stopped at a failed job first (stop_on_error)"


@dataclass(frozen=True)
class JobRow:
    """One job as a report and the CSV see it."""

    job_id: str
    index: int
    status: str
    attempt: int
    duration_s: float | None
    error_class: str | None
    error_message: str | None
    output: dict[str, Any] | None = None  # what a completed job returned
    warnings: list[str] = field(default_factory=list)  # what a completed job noted
    skip_reason: str | None = None  # why a skipped job did nothing


def job_row(batch_id: str, index: int, status: str, view: dict[str, Any] | None) -> JobRow:
    """The row of a job from its view (None: never started). Errors show only for jobs that
    did not complete, the output only for completed ones."""
    view = view or {}
    duration_ms = view.get("duration_ms")
    failed = status in ("failed", "cancelled", "retrying")
    return JobRow(
        job_id=f"{batch_id}.{index}",
        index=index,
        status=status,
        attempt=int(view.get("attempt") or 0),
        duration_s=round(duration_ms / 1000, 6) if duration_ms is not None else None,
        error_class=view.get("error_class") if failed else None,
        error_message=(view.get("error_message") or "")
        if failed and view.get("error_class")
        else None,
        output=view.get("output") if status == "completed" else None,
        warnings=list(view.get("warnings") or []) if status == "completed" else [],
        skip_reason=skip_reason_of(view, status),
    )


def skip_reason_of(view: dict[str, Any], status: str) -> str | None:
    """Why a `skipped` job did nothing: its job type's reason, or that it never started."""
    if status != "skipped":
        return None
    if view.get("status") == "skipped":
        return str(view.get("skip_reason") or "")
    return STOPPED_FIRST


def severity_of(error: dict[str, Any]) -> Severity:
    """A failed attempt's severity from its record in a job view's `errors`: as its
    `JobFailed` gave it, or (an event from before severities) as that event's rule would
    have."""
    given = error.get("severity")
    if given in SEVERITIES:
        return cast(Severity, given)
    return default_severity(bool(error.get("retryable")), crashed=bool(error.get("traceback")))


# The failed jobs that wait for a person's decision, by name: a filter of job listings
# beside the job statuses, and a kind of finish in the analytics timeline.
AWAITING_DECISION = "awaiting_decision"


def awaits_decision(view: Mapping[str, Any] | None, status: str) -> bool:
    """Whether a failed job's latest attempt stopped to wait for a person's decision (its
    record in the view's `errors` says so since `JobFailed` v4)."""
    if status != "failed" or not view:
        return False
    latest = (view.get("errors") or {}).get(str(view.get("attempt"))) or {}
    return bool(latest.get("awaiting_decision"))


def add_metrics(totals: dict[str, float], view: dict[str, Any] | None) -> None:
    """Adds a completed job's numeric metrics (booleans and strings left out) to `totals`."""
    for key, value in ((view or {}).get("metrics") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            totals[key] = totals.get(key, 0) + value


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted values; None for no values."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class ReportTally:
    """Accumulates jobs (`add`) and then summarises them (`summary`)."""

    counts: dict[str, int] = field(default_factory=dict)
    durations: array[float] = field(default_factory=lambda: array("d"))
    metrics: dict[str, float] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    failed_count: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)
    warnings_count: int = 0
    warned_jobs: int = 0
    cpu_s: float = 0.0  # process-isolated completed jobs' workers, summed
    max_rss_mb: float | None = None  # the largest of their peaks
    measured: int = 0  # completed jobs whose worker's use is known

    def add(self, row: JobRow, view: dict[str, Any] | None) -> None:
        self.counts[row.status] = self.counts.get(row.status, 0) + 1
        noted = ((view or {}).get("warnings") or []) if row.status == "completed" else []
        if noted:
            self.warned_jobs += 1
            self.warnings_count += len(noted)
            room = MAX_WARNINGS_LISTED - len(self.warnings)
            self.warnings += [
                {"job_id": row.job_id, "index": row.index, "message": str(message)}
                for message in noted[: max(0, room)]
            ]
        if row.duration_s is not None and row.status in ("completed", "failed"):
            self.durations.append(row.duration_s)
        if row.status == "completed":
            add_metrics(self.metrics, view)
            used = (view or {}).get("resources") or {}
            if "cpu_s" in used:
                self.measured += 1
                self.cpu_s += float(used["cpu_s"])
                peak = float(used.get("max_rss_mb") or 0)
                self.max_rss_mb = max(self.max_rss_mb or 0.0, peak)
        if row.status == "failed":
            self.failed_count += 1
            if len(self.failed) < MAX_FAILED_LISTED:
                self.failed.append(
                    {
                        "job_id": row.job_id,
                        "index": row.index,
                        "attempt": row.attempt,
                        "error_class": row.error_class,
                        "error_message": row.error_message,
                    }
                )

    def summary(self) -> dict[str, Any]:
        """Totals per state, success rate (completed / (completed + failed); None before
        any job finished), duration statistics over finished jobs, metric totals over
        completed jobs, the first `MAX_FAILED_LISTED` failed jobs and the first
        `MAX_WARNINGS_LISTED` warnings of completed jobs."""
        completed = self.counts.get("completed", 0)
        failed = self.counts.get("failed", 0)
        ordered = sorted(self.durations)
        avg = sum(ordered) / len(ordered) if ordered else None
        return {
            "totals": {"total": sum(self.counts.values()), **dict(sorted(self.counts.items()))},
            "success_rate": completed / (completed + failed) if completed + failed else None,
            "avg_duration_s": round(avg, 6) if avg is not None else None,
            "p50_duration_s": percentile(ordered, 50),
            "p95_duration_s": percentile(ordered, 95),
            "metrics": dict(sorted(self.metrics.items())),
            "failed_jobs": self.failed,
            "failed_count": self.failed_count,
            "failed_truncated": self.failed_count > len(self.failed),
            "warned_jobs": self.warned_jobs,
            "warnings": self.warnings,
            "warnings_count": self.warnings_count,
            "warnings_truncated": self.warnings_count > len(self.warnings),
            "resources": {
                "jobs_measured": self.measured,
                "cpu_s": round(self.cpu_s, 3),
                "max_rss_mb": self.max_rss_mb,
            }
            if self.measured
            else None,
        }
