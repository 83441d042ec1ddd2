"""The scheduler's Prometheus metrics.

Counters are fed by what the scheduler publishes (`observe`, wrapped around its publisher);
gauges are read from its in-memory state at scrape time (`SchedulerCollector`), so the engine
itself does no bookkeeping for metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contracts.events import (
    BatchCancelled,
    BatchCompleted,
    BatchFailed,
    JobDispatched,
    JobRetryScheduled,
    JobsDispatched,
    RetentionRunCompleted,
    ScheduleTriggered,
)
from contracts.topics import batch_id_of
from scheduler.handlers.engine import EXECUTOR_TTL_S, Scheduler
from scheduler.handlers.schedules import ScheduleClock
from servicekit.publisher import Outgoing

ACTIVE_STATUSES = ("uploading", "queued", "running", "paused", "retrying")

JOBS_DISPATCHED = Counter(
    "batchyard_jobs_dispatched_total",
    "Jobs dispatched to executors (every attempt), by job type",
    ["job_type"],
)
JOBS_RETRIED = Counter(
    "batchyard_jobs_retried_total",
    "Failed jobs scheduled for another attempt, by job type",
    ["job_type"],
)
BATCHES_FINISHED = Counter(
    "batchyard_batches_finished_total",
    "Batches that reached a final state, by that state",
    ["status"],
)
DECISION_SECONDS = Histogram(
    "batchyard_scheduler_decision_seconds",
    "Duration of one scheduling round (expire leases, pick and dispatch jobs, finish batches)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_FINAL_EVENTS = (BatchCompleted, BatchFailed, BatchCancelled)


def observer(job_type_of: Callable[[str], str | None]) -> Callable[[Sequence[Outgoing]], None]:
    """Counts dispatches, retries and finished batches among published events;
    `job_type_of(batch_id)` names a batch's job type."""

    def observe(messages: Sequence[Outgoing]) -> None:
        for message in messages:
            data = message.envelope.data
            kind = message.envelope.type
            if kind == JobDispatched.TYPE:
                JOBS_DISPATCHED.labels(data["job_type"]).inc()
            elif kind == JobsDispatched.TYPE:
                JOBS_DISPATCHED.labels(data["job_type"]).inc(len(data["jobs"]))
            elif kind == JobRetryScheduled.TYPE:
                job_type = job_type_of(batch_id_of(data["job_id"])) or "unknown"
                JOBS_RETRIED.labels(job_type).inc()
            elif kind in {e.TYPE for e in _FINAL_EVENTS}:
                BATCHES_FINISHED.labels(data["status"]).inc()

    return observe


@dataclass
class ProgressClock:
    """When each batch last finished a job, as seen at scrape time."""

    clock: Callable[[], float] = time.time
    _seen: dict[str, tuple[int, float]] = field(default_factory=dict)

    def last_progress(self, batch_id: str, finished: int) -> float:
        before = self._seen.get(batch_id)
        if before is None or before[0] != finished:
            self._seen[batch_id] = (finished, self.clock())
        return self._seen[batch_id][1]

    def forget_except(self, batch_ids: Iterable[str]) -> None:
        keep = set(batch_ids)
        for batch_id in [b for b in self._seen if b not in keep]:
            del self._seen[batch_id]


class SchedulerCollector(Collector):
    """Gauges over the scheduler's state. Registered once per process; `track` points it at
    the scheduler of the latest bootstrap."""

    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None
        self.is_leader: Callable[[], bool] = lambda: False
        self.progress = ProgressClock()

    def track(self, scheduler: Scheduler, is_leader: Callable[[], bool]) -> None:
        self.scheduler = scheduler
        self.is_leader = is_leader
        self.progress = ProgressClock()

    def describe(self) -> Iterable[Metric]:
        return []  # collected lazily; names are documented in `collect`

    def collect(self) -> Iterable[Metric]:
        leader = GaugeMetricFamily(
            "batchyard_scheduler_leader",
            "1 if this scheduler holds the leader lease (is the active one), else 0",
        )
        leader.add_metric([], 1.0 if self.is_leader() else 0.0)
        yield leader
        s = self.scheduler
        if s is None:
            return
        now = s.clock()
        batches = GaugeMetricFamily(
            "batchyard_batches", "Unfinished batches by status", labels=["status"]
        )
        by_status = dict.fromkeys(ACTIVE_STATUSES, 0)
        unstarted = running = waiting_retry = 0
        for b in list(s.batches.values()):
            by_status[b.status] = by_status.get(b.status, 0) + 1
            for job in list(b.in_flight.values()):
                if job.status == "dispatched":
                    unstarted += 1
                else:
                    running += 1
            waiting_retry += len(b.retries)
        for status, count in by_status.items():
            batches.add_metric([status], count)
        yield batches

        jobs = GaugeMetricFamily(
            "batchyard_jobs_in_flight",
            "Jobs the scheduler has dispatched and not yet seen finish, by state: "
            "dispatched (not started by an executor yet) or running",
            labels=["state"],
        )
        jobs.add_metric(["dispatched"], unstarted)
        jobs.add_metric(["running"], running)
        yield jobs
        yield GaugeMetricFamily(
            "batchyard_jobs_dispatched_unstarted",
            "Jobs dispatched but not yet started by an executor",
            value=unstarted,
        )
        yield GaugeMetricFamily(
            "batchyard_jobs_waiting_retry",
            "Failed jobs waiting for their backoff to pass",
            value=waiting_retry,
        )

        live = [e for e in list(s.executors.values()) if now - e.seen_at <= EXECUTOR_TTL_S]
        slots = GaugeMetricFamily(
            "batchyard_scheduler_executor_slots",
            "Executor slots as the scheduler sees them in live heartbeats",
            labels=["state"],
        )
        slots.add_metric(["total"], sum(e.slots_total for e in live))
        slots.add_metric(["free"], sum(e.slots_free for e in live))
        yield slots
        yield GaugeMetricFamily(
            "batchyard_scheduler_executors", "Executors with a live heartbeat", value=len(live)
        )

        progress = GaugeMetricFamily(
            "batchyard_batch_last_progress_timestamp_seconds",
            "When an unfinished batch last had a job finish (or was first seen), per batch",
            labels=["batch_id", "status"],
        )
        for b in list(s.batches.values()):
            finished = b.completed + b.failed + b.cancelled + b.skipped
            progress.add_metric(
                [b.batch_id, b.status], self.progress.last_progress(b.batch_id, finished)
            )
        self.progress.forget_except(s.batches)
        yield progress


COLLECTOR = SchedulerCollector()
REGISTRY.register(COLLECTOR)


def track(scheduler: Scheduler, is_leader: Callable[[], bool]) -> None:
    """Exports `scheduler`'s state in this process's /metrics."""
    COLLECTOR.track(scheduler, is_leader)


SCHEDULE_RUNS = Counter(
    "batchyard_schedule_runs_total",
    "Schedule runs fired by the cron clock; `missed` ones were fired late by the catch-up policy",
    ["missed"],
)


def observe_schedules(messages: Sequence[Outgoing]) -> None:
    """Counts the schedule runs fired."""
    for message in messages:
        if message.envelope.type == ScheduleTriggered.TYPE:
            SCHEDULE_RUNS.labels(str(bool(message.envelope.data.get("missed"))).lower()).inc()


class _ScheduleCollector(Collector):
    def __init__(self) -> None:
        self.clock: ScheduleClock | None = None

    def collect(self) -> Iterable[Metric]:
        if self.clock is None:
            return
        enabled = sum(1 for s in self.clock.schedules.values() if s.get("enabled"))
        gauge = GaugeMetricFamily(
            "batchyard_schedules_enabled", "Enabled schedules the cron clock tracks"
        )
        gauge.add_metric([], enabled)
        yield gauge
        skipped = GaugeMetricFamily(
            "batchyard_schedule_runs_skipped",
            "Missed schedule runs not fired (catch-up policy) since this scheduler started",
        )
        skipped.add_metric([], self.clock.skipped)
        yield skipped


_SCHEDULES = _ScheduleCollector()
REGISTRY.register(_SCHEDULES)


def track_schedules(clock: ScheduleClock) -> None:
    _SCHEDULES.clock = clock


RETENTION_BATCHES = Counter(
    "batchyard_retention_batches_total",
    "Batches archived or deleted by retention runs (dry runs not counted), by action",
    ["action"],
)
RETENTION_RUNS = Counter(
    "batchyard_retention_runs_total",
    "Retention runs, by trigger (schedule or manual) and whether they were dry runs",
    ["trigger", "dry_run"],
)
RETENTION_LAST_RUN = Gauge(
    "batchyard_retention_last_run_timestamp_seconds",
    "When the last retention run (not a dry run) of any tenant finished, as a Unix time",
)
RETENTION_RUN_SECONDS = Histogram(
    "batchyard_retention_run_seconds",
    "Duration of one retention run of one tenant",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)


def observe_retention(run: RetentionRunCompleted, seconds: float) -> None:
    """Counts a finished retention run and what it archived and deleted."""
    RETENTION_RUNS.labels(run.trigger, str(run.dry_run).lower()).inc()
    RETENTION_RUN_SECONDS.observe(seconds)
    if not run.dry_run:
        RETENTION_BATCHES.labels("archived").inc(run.archived)
        RETENTION_BATCHES.labels("deleted").inc(run.deleted)
        RETENTION_LAST_RUN.set(run.finished_at.timestamp())
