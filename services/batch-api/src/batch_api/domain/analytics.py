"""Analytics folded from job views and batch views, one at a time. Pure: no I/O.

Per batch (`BatchAnalyticsTally`): duration percentiles of finished jobs, a throughput
timeline of finishes in at most `MAX_POINTS` equal buckets, failures by error class over
every failed attempt (a job that failed twice and then completed counts twice), retries,
and the completed jobs' metrics summed (what the job type counts: templates processed,
duplicates removed... as the batch runs).
Across batches (`StatsTally`): batches by status, jobs by outcome, success rate and
throughput, overall and per job type."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_api.domain.report import (
    AWAITING_DECISION,
    add_metrics,
    awaits_decision,
    percentile,
    severity_of,
)
from contracts.vocabulary import SEVERITIES

MAX_POINTS = 60
# Bucket widths a timeline may use, in seconds: the smallest that needs at most MAX_POINTS.
WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
FINISHED = ("completed", "failed")


def _aware(at: Any) -> datetime | None:
    if not isinstance(at, datetime):
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def bucket_width(span_s: float) -> int:
    """The timeline's bucket width for a span of `span_s` seconds."""
    for width in WIDTHS:
        if span_s / width <= MAX_POINTS:
            return width
    return int(span_s // MAX_POINTS) + 1


@dataclass
class BatchAnalyticsTally:
    durations: array[float] = field(default_factory=lambda: array("d"))
    finishes: list[tuple[datetime, str]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    retryable_errors: dict[str, int] = field(default_factory=dict)
    worst: dict[str, int] = field(default_factory=dict)  # error class → its worst severity
    metrics: dict[str, float] = field(default_factory=dict)  # summed over completed jobs
    severities: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    jobs_attempted: int = 0
    retried_jobs: int = 0

    def add(self, status: str, view: dict[str, Any] | None) -> None:
        """One job: its status as the API shows it and its view (None: never started)."""
        if view is None:
            return
        if status == "completed":
            add_metrics(self.metrics, view)
        duration_ms = view.get("duration_ms")
        if status in FINISHED and isinstance(duration_ms, int | float):
            self.durations.append(duration_ms / 1000)
        finished_at = _aware(view.get("finished_at"))
        if status in FINISHED and finished_at is not None:
            # a failed job parked for a person's decision is drawn apart from the errors
            kind = AWAITING_DECISION if awaits_decision(view, status) else status
            self.finishes.append((finished_at, kind))
        attempts = view.get("attempts") or {}
        self.attempts += len(attempts)
        self.jobs_attempted += 1 if attempts else 0
        if len(attempts) > 1:
            self.retried_jobs += 1
        failures = view.get("errors") or {}
        for key, record in attempts.items():
            if (record or {}).get("status") == "cancelled":
                continue  # stopped on request: not a failure of the job
            if (failures.get(key) or {}).get("awaiting_decision"):
                continue  # parked for a person's decision: no error of the batch
            error = (record or {}).get("error")
            if isinstance(error, dict) and error.get("class"):
                name = str(error["class"])
                self.errors[name] = self.errors.get(name, 0) + 1
                if error.get("retryable"):
                    self.retryable_errors[name] = self.retryable_errors.get(name, 0) + 1
                severity = severity_of(failures.get(key) or error)
                self.severities[severity] = self.severities.get(severity, 0) + 1
                rank = SEVERITIES.index(severity)
                self.worst[name] = max(self.worst.get(name, 0), rank)

    def summary(self, started_at: datetime | None, until: datetime) -> dict[str, Any]:
        ordered = sorted(self.durations)
        return {
            "durations": _duration_stats(ordered),
            "throughput": self._timeline(_aware(started_at), until),
            "errors": [
                {
                    "error_class": name,
                    "count": count,
                    "retryable": self.retryable_errors.get(name, 0),
                    "severity": SEVERITIES[self.worst.get(name, 0)],
                }
                for name, count in sorted(self.errors.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "severities": {s: self.severities.get(s, 0) for s in SEVERITIES},
            "metrics": dict(sorted(self.metrics.items())),
            "retries": {
                "attempts": self.attempts,
                "retried_jobs": self.retried_jobs,
                "extra_attempts": self.attempts - self.jobs_attempted,
            },
        }

    def _timeline(self, started_at: datetime | None, until: datetime) -> dict[str, Any]:
        if not self.finishes:
            return {"bucket_s": None, "points": []}
        first = min(at for at, _ in self.finishes)
        start = min(started_at, first) if started_at is not None else first
        end = max(until, max(at for at, _ in self.finishes))
        width = bucket_width((end - start).total_seconds())
        count = int((end - start).total_seconds() // width) + 1
        completed = [0] * count
        failed = [0] * count
        awaiting = [0] * count  # of `failed`
        for at, status in self.finishes:
            slot = min(count - 1, int((at - start).total_seconds() // width))
            (completed if status == "completed" else failed)[slot] += 1
            if status == AWAITING_DECISION:
                awaiting[slot] += 1
        points = [
            {
                "at": start + timedelta(seconds=i * width),
                "completed": completed[i],
                "failed": failed[i],
                "awaiting_decision": awaiting[i],
                "jobs_per_s": round((completed[i] + failed[i]) / width, 3),
            }
            for i in range(count)
        ]
        return {"bucket_s": width, "points": points}


def _duration_stats(ordered: list[float]) -> dict[str, Any]:
    if not ordered:
        return {"count": 0, "min_s": None, "avg_s": None, "p50_s": None, "p90_s": None,
                "p95_s": None, "p99_s": None, "max_s": None}  # fmt: skip
    return {
        "count": len(ordered),
        "min_s": round(ordered[0], 6),
        "avg_s": round(sum(ordered) / len(ordered), 6),
        "p50_s": percentile(ordered, 50),
        "p90_s": percentile(ordered, 90),
        "p95_s": percentile(ordered, 95),
        "p99_s": percentile(ordered, 99),
        "max_s": round(ordered[-1], 6),
    }


@dataclass
class _Totals:
    batches: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0

    def out(self, window_s: float) -> dict[str, Any]:
        finished = self.completed + self.failed
        return {
            "batches": self.batches,
            "jobs_completed": self.completed,
            "jobs_failed": self.failed,
            "jobs_cancelled": self.cancelled,
            "jobs_skipped": self.skipped,
            "success_rate": round(self.completed / finished, 6) if finished else None,
            "jobs_per_s": round(finished / window_s, 6) if window_s > 0 else None,
        }


@dataclass
class StatsTally:
    """Batches created in a time window, with their job counts from their views."""

    by_status: dict[str, int] = field(default_factory=dict)
    overall: _Totals = field(default_factory=_Totals)
    by_type: dict[str, _Totals] = field(default_factory=dict)

    def add(self, status: str, job_type: str, counts: dict[str, Any]) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1
        for totals in (self.overall, self.by_type.setdefault(job_type, _Totals())):
            totals.batches += 1
            totals.completed += int(counts.get("completed") or 0)
            totals.failed += int(counts.get("failed") or 0)
            totals.cancelled += int(counts.get("cancelled") or 0)
            totals.skipped += int(counts.get("skipped") or 0)

    def summary(self, since: datetime, until: datetime) -> dict[str, Any]:
        window_s = (until - since).total_seconds()
        return {
            "since": since,
            "until": until,
            "batches_by_status": dict(sorted(self.by_status.items())),
            **self.overall.out(window_s),
            "job_types": {name: t.out(window_s) for name, t in sorted(self.by_type.items())},
        }
