"""The scheduler's service layer: one method per message it consumes, plus `tick`, which
expires leases, dispatches within the executors' free slots, finishes batches and publishes
progress. All state changes happen under one lock, are written to the store, and only then
are events published; the caller acks the consumed messages after that (at-least-once in,
idempotent effects)."""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.codec import envelope_for
from contracts.envelope import Envelope, deterministic_event_id
from contracts.events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchCreated,
    BatchDeadlineAtRisk,
    BatchDeadlineMissed,
    BatchFailed,
    BatchItemsAdded,
    BatchPaused,
    BatchPauseRequested,
    BatchProgress,
    BatchResumed,
    BatchResumeRequested,
    BatchRetrying,
    BatchRetryRequested,
    BatchRollbackFailed,
    BatchRolledBack,
    BatchRollingBack,
    BatchSnapshot,
    BatchStarted,
    BatchSubmitted,
    BatchUpdated,
    CancelBroadcast,
    DispatchedJob,
    Event,
    ExecutorHeartbeat,
    JobCancelled,
    JobCancelRequested,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRetryRequested,
    JobRetryScheduled,
    JobsDispatched,
    JobSkipped,
    JobStarted,
    RollbackCompleted,
    RollbackFailed,
    RollbackRequested,
    RollbackStarted,
    rollback_id_of,
)
from contracts.tolerant import validate_tolerantly
from contracts.topics import Topics, batch_id_of, job_id_for
from contracts.vocabulary import TERMINAL_BATCH_STATUSES, BatchConfig, priority_level
from scheduler.adapters.store import SchedulerStore
from scheduler.domain.deadline import judge
from scheduler.domain.fairshare import FairShare, weight_of
from scheduler.domain.model import BatchRuntime, InFlight
from scheduler.domain.ratelimit import RateLimits
from scheduler.domain.retry import backoff_s, should_retry
from scheduler.domain.states import can_batch, next_batch_state, next_job_state
from servicekit.consume import TransientError
from servicekit.publisher import EventPublisher, Outgoing

log = logging.getLogger(__name__)

PRODUCER = "scheduler"
EXECUTOR_TTL_S = 5.0
# Jobs of a batch that lately took less than this are dispatched in groups (`_short`). Not
# lower: an executor busy with many jobs reports even no-op ones at up to 75 ms (its event
# loop's delay counts), p90 25 ms at 40,000 jobs (docs/performance.md, session 20).
GROUP_JOBS_UNDER_MS = 100.0
# A batch whose running jobs' own progress reports moved it this much (in jobs) announces
# it (`BatchProgress.running_done`, which ETAs count) even when no job ended.
RUNNING_DONE_STEP = 0.01


FINISHED = TERMINAL_BATCH_STATUSES | {"archived"}


class LeadershipLost(TransientError):
    """This instance may no longer act as the scheduler."""


@dataclass
class ExecutorSeen:
    slots_total: int
    slots_free: int
    seen_at: float
    process_slots: int = 0  # of slots_total, for jobs of process_types
    process_types: frozenset[str] = frozenset()
    grouped_dispatches: bool = False  # takes `JobsDispatched`
    started_at: datetime | None = None  # its process's start (heartbeat v4)


@dataclass
class SchedulerConfig:
    lease_s: float = 15.0
    prefetch: int = 8
    global_max_in_flight: int = 100_000
    # Jobs of one batch sent in one `JobsDispatched` at most (1: a `JobDispatched` a job).
    dispatch_group: int = 32
    progress_interval_s: float = 0.25
    rate_limits: dict[str, float] = field(default_factory=dict)
    dependency_check_s: float = 1.0
    # A dependency not known yet may be one whose `BatchCreated` sits in another partition
    # of `batch.commands`, behind this batch's `BatchSubmitted`: wait this long before
    # deciding that it does not exist.
    unknown_dependency_grace_s: float = 30.0


@dataclass
class Scheduler:
    store: SchedulerStore
    publisher: EventPublisher
    topics: Topics
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    clock: Callable[[], float] = time.time
    fence: Callable[[], bool] = lambda: True
    batches: dict[str, BatchRuntime] = field(default_factory=dict)
    executors: dict[str, ExecutorSeen] = field(default_factory=dict)
    fair: FairShare = field(default_factory=FairShare)
    rates: RateLimits = field(default_factory=RateLimits)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    _outbox: list[Outgoing] = field(default_factory=list)
    _job_writes: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    _chunk_cache: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    _final_docs: list[dict[str, Any]] = field(default_factory=list)
    _last_progress: float = 0.0
    _last_dependency_check: float = 0.0
    _finished_status: dict[str, str] = field(default_factory=dict)
    _resting: dict[str, BatchRuntime] = field(default_factory=dict)  # finished, changed
    _unknown_since: dict[str, float] = field(default_factory=dict)
    _handler_table: dict[type[Event], Callable[[Envelope, Any], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._handler_table = self._handlers()
        self.rates = RateLimits(self.config.rate_limits)

    # ------------------------------------------------------------------ recovery
    async def recover(self) -> None:
        """Rebuilds the in-memory state of unfinished batches from the store."""
        await self.store.setup()
        now = self.clock()
        for doc in await self.store.active_batches():
            b = _runtime_from_doc(doc)
            for chunk, first, count in await self.store.chunk_layout(b.batch_id):
                b.add_chunk(chunk, first, count)
            states = await self.store.job_states(b.batch_id)
            # a job cancelled on request before it was dispatched has a state of its own
            unclaimed = {i for i, j in states.items() if j.get("before_dispatch")}
            claimed = [i for i in states if i not in unclaimed or i < b.next_index]
            if claimed:
                b.next_index = max(b.next_index, max(claimed) + 1)
            b.cancelled_indexes = {i for i in unclaimed if i >= b.next_index}
            b.completed = sum(1 for j in states.values() if j.get("status") == "completed")
            b.failed = sum(1 for j in states.values() if j.get("status") == "failed")
            # jobs skipped by a stop were never dispatched, so have no state
            skipped = sum(1 for j in states.values() if j.get("status") == "skipped")
            b.skipped = skipped + b.skipped_waiting
            for index, j in states.items():
                status, attempt = j.get("status"), j.get("attempt", 1)
                failures = j.get("failures", 0)
                if status == "retrying":
                    b.schedule_retry(index, attempt + 1, failures, now)
                elif status in ("dispatched", "running"):
                    job_id = job_id_for(b.batch_id, index)
                    b.in_flight[job_id] = InFlight(
                        job_id, index, attempt, failures, status, now + self.config.lease_s
                    )
            if b.cancelling:
                lost = _uncounted(b)
                b.cancelled += lost
                what = "counted cancelled, as the batch is being stopped"
            else:
                unrecorded = _unrecorded(b, states)
                for index in unrecorded:
                    b.schedule_retry(index, 1, 0, now)  # never dispatched: its first attempt
                lost, what = len(unrecorded), "dispatching them now"
            if lost:
                log.warning(
                    "%d job(s) of batch %s were claimed but their dispatch never recorded: %s",
                    lost,
                    b.batch_id,
                    what,
                )
            self.batches[b.batch_id] = b
        log.info("recovered %d unfinished batches", len(self.batches))

    # ------------------------------------------------------------------ consuming
    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        """Applies consumed events in order, dispatches into the slots they freed, then
        persists and publishes both in one flush (a tick's own flush would be a second store
        round trip per consumed batch)."""
        async with self.lock:
            for envelope, event in items:
                handler = self._handler_table.get(type(event))
                if handler is not None:
                    await handler(envelope, event)
            await self._dispatch(self.clock())
            await self._flush()
        self.wake.set()

    def _handlers(self) -> dict[type[Event], Callable[[Envelope, Any], Any]]:
        return {
            BatchCreated: self._on_batch_created,
            BatchItemsAdded: self._on_items_added,
            BatchSubmitted: self._on_submitted,
            BatchUpdated: self._on_updated,
            BatchPauseRequested: self._on_pause,
            BatchResumeRequested: self._on_resume,
            BatchCancelRequested: self._on_cancel,
            BatchRetryRequested: self._on_batch_retry,
            JobRetryRequested: self._on_job_retry,
            JobCancelRequested: self._on_job_cancel,
            JobStarted: self._on_job_started,
            JobProgress: self._on_job_progress,
            JobCompleted: self._on_job_done,
            JobSkipped: self._on_job_done,
            JobFailed: self._on_job_failed,
            ExecutorHeartbeat: self._on_heartbeat,
            RollbackRequested: self._on_rollback_requested,
            RollbackStarted: self._on_rollback_started,
            RollbackCompleted: self._on_rollback_ended,
            RollbackFailed: self._on_rollback_ended,
        }

    async def _on_batch_created(self, env: Envelope, e: BatchCreated) -> None:
        if e.batch_id in self.batches:
            return
        b = BatchRuntime(
            batch_id=e.batch_id,
            tenant=env.tenant,
            job_type=e.job_type,
            config=e.config,
            priority_level=priority_level(e.priority),
            status="uploading",  # items follow; BatchSubmitted moves it to queued
        )
        if await self.store.insert_batch(_doc_from_runtime(b)):
            self.batches[b.batch_id] = b

    async def _on_items_added(self, env: Envelope, e: BatchItemsAdded) -> None:
        b = self.batches.get(e.batch_id)
        if b is None:
            return
        if await self.store.insert_chunk(e.batch_id, e.chunk, e.first_index, e.items):
            self._remember_chunk((e.batch_id, e.chunk), e.items)  # its dispatch reads no store
        b.add_chunk(e.chunk, e.first_index, len(e.items))  # a repeated chunk is ignored

    async def _on_submitted(self, env: Envelope, e: BatchSubmitted) -> None:
        b = self.batches.get(e.batch_id)
        if b is None or b.total is not None:
            return
        b.total = e.total_items
        if can_batch(b.status, "submit"):
            b.status = next_batch_state(b.status, "submit")
        b.dirty = True  # saved by this round's flush, before anything is published
        if b.config.depends_on is not None:
            await self._resolve_dependencies(b)

    async def _on_updated(self, env: Envelope, e: BatchUpdated) -> None:
        """A new priority, deadline or concurrency for a batch not finished yet (applied again
        on a redelivery: the values are absolute). A lower concurrency stops no running job:
        fewer are dispatched until it holds."""
        b = self.batches.get(e.batch_id)
        if b is None:
            return
        if e.priority is not None:
            b.priority_level = priority_level(e.priority)
        if e.max_concurrent_jobs is not None:
            b.config = b.config.model_copy(update={"max_concurrent_jobs": e.max_concurrent_jobs})
        if e.deadline is not None or e.deadline_cleared:
            b.config = b.config.model_copy(update={"deadline": e.deadline})
            b.deadline_boost = 1.0  # judged again against the new deadline at the next tick
        self._emit_snapshot(b, BatchProgress)

    def _at(self) -> datetime:
        """The scheduler's clock as a time of day (a test's clock moves it)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    async def _on_pause(self, env: Envelope, e: BatchPauseRequested) -> None:
        b = self.batches.get(e.batch_id)
        if b is not None and can_batch(b.status, "pause"):
            b.status = next_batch_state(b.status, "pause")
            if not b.in_flight:  # else it stops once they end (`tick`): they move it still
                b.paused(self._at())
            self._emit_snapshot(b, BatchPaused)

    async def _on_resume(self, env: Envelope, e: BatchResumeRequested) -> None:
        b = self.batches.get(e.batch_id)
        if b is not None and can_batch(b.status, "resume"):
            b.status = next_batch_state(b.status, "resume")
            b.moving(self._at())
            self._emit_snapshot(b, BatchResumed)

    async def _on_cancel(self, env: Envelope, e: BatchCancelRequested) -> None:
        b = self.batches.get(e.batch_id)
        if b is None or b.cancelling or not can_batch(b.status, "cancel"):
            return
        self._stop(b, reason=None)

    def _stop(
        self, b: BatchRuntime, reason: str | None, *, cancel: bool = False, skip: bool = False
    ) -> None:
        """Stops dispatching, ends waiting jobs as cancelled (as skipped with `skip`, those
        never dispatched) and asks executors to stop the running ones; the batch finishes
        once nothing is in flight: `failed` with `reason`, or `cancelled` (with `reason`, if
        given) when `cancel` or no reason is given."""
        b.cancelling = True
        if cancel:
            b.cancel_reason = reason
        else:
            b.stop_reason = reason
        for waiting in b.retries:
            why = reason or b.cancel_reason
            self._cancel_job(b, waiting.index, waiting.attempt - 1, "retrying", why)
        if skip:
            b.skip_waiting()
        else:
            b.cancel_waiting()
        if b.in_flight:
            self._send(self.topics.control, b.batch_id, CancelBroadcast(batch_id=b.batch_id), b)
        b.dirty = True

    def _cancel_job(
        self, b: BatchRuntime, index: int, attempt: int, status: str, reason: str | None
    ) -> None:
        """Ends a job that is not running anywhere as cancelled, in the store and on the
        job events topic (so its read-model view does not stay `retrying` or `running`)."""
        self._write_job(b, index, {"status": next_job_state(status, "cancel")})
        job_id = job_id_for(b.batch_id, index)
        event = JobCancelled(
            job_id=job_id, batch_id=b.batch_id, attempt=attempt, reason=reason or "cancelled"
        )
        self._send(self.topics.job_events, b.batch_id, event, b)

    async def _on_batch_retry(self, env: Envelope, e: BatchRetryRequested) -> None:
        b = self.batches.get(e.batch_id) or await self._load_finished(e.batch_id)
        if b is None or not can_batch(b.status, "retry"):
            return
        states = await self.store.job_states(b.batch_id)
        failed = [
            (i, j.get("attempt", 1)) for i, j in states.items() if j.get("status") == "failed"
        ]
        if not failed and b.skipped_from is None:
            return
        now = self.clock()
        for index, attempt in failed:
            b.schedule_retry(index, attempt + 1, 0, now)
            self._write_job(
                b, index, {"status": next_job_state("failed", "retry"), "awaiting": False}
            )
        b.failed -= len(failed)
        b.awaiting = 0  # every failed job runs again, those awaiting a decision too
        b.unskip()  # what `stop_on_error` skipped runs too
        b.status = next_batch_state(b.status, "retry")
        b.cancelling, b.stop_reason = False, None
        b.moving(self._at())
        b.window_from = b.window_next = None  # the retry's pace is its own
        b.priority_level = min(10, b.priority_level + 2)
        self.batches[b.batch_id] = b
        self._emit_snapshot(b, BatchRetrying)

    async def _on_job_retry(self, env: Envelope, e: JobRetryRequested) -> None:
        b = self.batches.get(e.batch_id) or await self._load_finished(e.batch_id)
        if b is None or (b.cancelling and b.status in ("running", "retrying", "paused", "queued")):
            # a batch being stopped would wait for the retry without ever dispatching it
            return
        index = int(e.job_id.rsplit(".", 1)[1])
        job = (await self.store.job_states(b.batch_id)).get(index)
        if job is None or job.get("status") != "failed":
            return
        if b.status not in ("running", "retrying", "paused", "queued"):
            if not can_batch(b.status, "retry"):
                return
            b.status = next_batch_state(b.status, "retry")
            b.cancelling, b.stop_reason = False, None
            b.moving(self._at())
            b.window_from = b.window_next = None  # the retry's pace is its own
        b.schedule_retry(index, job.get("attempt", 1) + 1, 0, self.clock())
        b.failed -= 1
        if job.get("awaiting"):  # decided (or retried anyway)
            b.awaiting = max(0, b.awaiting - 1)
        b.unskip()  # the jobs its failure skipped (`stop_on_error`) follow it
        self._write_job(b, index, {"status": next_job_state("failed", "retry"), "awaiting": False})
        self.batches[b.batch_id] = b
        self._emit_snapshot(b, BatchRetrying)

    async def _on_job_cancel(self, env: Envelope, e: JobCancelRequested) -> None:
        b = self.batches.get(e.batch_id)
        if b is None:
            return
        if e.job_id in b.in_flight:
            self._send(
                self.topics.control,
                b.batch_id,
                CancelBroadcast(batch_id=b.batch_id, job_ids=[e.job_id]),
                b,
            )
            return
        index = int(e.job_id.rsplit(".", 1)[1])
        waiting = next((r for r in b.retries if r.index == index), None)
        if waiting is not None:
            b.retries = [r for r in b.retries if r.index != index]
            heapq.heapify(b.retries)
            b.cancelled += 1
            self._cancel_job(b, index, waiting.attempt - 1, "retrying", "job cancelled on request")
        elif index >= b.next_index:
            b.cancelled_indexes.add(index)
            # recorded, so that a scheduler taking over knows it too
            self._write_job(b, index, {"status": "cancelled", "before_dispatch": True})
        b.dirty = True

    async def _on_rollback_requested(self, env: Envelope, e: RollbackRequested) -> None:
        """Rollback is the rollback service's work. The scheduler records when it was asked
        for (retention leaves a batch alone while it rolls back); a running batch is stopped
        (its rollback begins once the rollback service has planned it), a finished one is
        `rolling_back` at once: the rollback service plans before it starts, reading every
        backup (seconds for thousands of jobs), and the batch would show nothing meanwhile."""
        if e.dry_run:
            return
        self._final_docs.append({"_id": e.batch_id, "rollback_requested_at": env.occurred_at})
        b = self.batches.get(e.batch_id)
        if b is None:
            await self._begin_rollback(e.batch_id, rollback_id_of(e.batch_id, env.event_id))
        elif b.status in ("running", "paused", "queued"):
            self._stop(b, reason="rollback requested")

    async def _on_rollback_started(self, env: Envelope, e: RollbackStarted) -> None:
        """The rollback service began compensating a finished batch: it is `rolling_back`
        (already, if the request found it finished). The batch's status follows the request
        and then the rollback service's own events (one partition per batch, so they arrive
        in order): a dry run never changes it, a request the rollback service refuses (a
        corrupt backup) ends `rollback_failed`, and a replayed request or start of a rollback
        that already ended is ignored."""
        if not e.dry_run:
            await self._begin_rollback(e.batch_id, e.rollback_id)

    async def _begin_rollback(self, batch_id: str, rollback_id: str) -> None:
        b = await self._finished(batch_id)
        if b is None or not can_batch(b.status, "rollback") or b.rollback_id == rollback_id:
            return
        b.status = next_batch_state(b.status, "rollback")
        b.rollback_id = rollback_id
        self._emit_snapshot(b, BatchRollingBack, rollback_id=rollback_id)
        self._keep_finished(b)

    async def _on_rollback_ended(
        self, env: Envelope, e: RollbackCompleted | RollbackFailed
    ) -> None:
        """The end of the rollback that made the batch `rolling_back`; the end of any other
        rollback (a dry run) changes nothing."""
        if e.dry_run:
            return
        b = await self._finished(e.batch_id)
        if b is None or b.status != "rolling_back" or b.rollback_id != e.rollback_id:
            return
        if isinstance(e, RollbackCompleted):
            b.status = next_batch_state(b.status, "rollback_done")
            self._emit_snapshot(
                b, BatchRolledBack, rollback_id=e.rollback_id, compensated_jobs=e.compensated_jobs
            )
        else:
            b.status = next_batch_state(b.status, "rollback_fail")
            self._emit_snapshot(b, BatchRollbackFailed, rollback_id=e.rollback_id, reason=e.reason)
        self._keep_finished(b)

    def holds(self, batch_id: str) -> bool:
        """Whether the engine has the batch in memory (running, or a finished batch's change
        not yet written): retention leaves such a batch alone."""
        return batch_id in self.batches or batch_id in self._resting

    async def _finished(self, batch_id: str) -> BatchRuntime | None:
        """A batch that is not running (finished, or being rolled back): as changed since the
        last flush, or from the store."""
        if batch_id in self.batches:
            return None
        if batch_id in self._resting:
            return self._resting[batch_id]
        doc = await self.store.find_batch(batch_id)
        return None if doc is None else _runtime_from_doc(doc)

    def _keep_finished(self, b: BatchRuntime) -> None:
        """Saves a finished batch's new status at the next flush."""
        self._resting[b.batch_id] = b
        self._finished_status[b.batch_id] = b.status

    async def _on_job_started(self, env: Envelope, e: JobStarted) -> None:
        b, job = self._current(e.batch_id, e.job_id, e.attempt)
        if b is None or job is None or job.status != "dispatched":
            return
        job.status = next_job_state(job.status, "start")
        job.lease_until = self.clock() + self.config.lease_s
        job.holder = e.executor_id
        self._write_job(b, job.index, {"status": job.status})
        b.dirty = True

    async def _on_job_progress(self, env: Envelope, e: JobProgress) -> None:
        b, job = self._current(e.batch_id, e.job_id, e.attempt)
        if b is not None and job is not None:
            job.lease_until = self.clock() + self.config.lease_s
            if e.percent is not None:
                job.percent = e.percent
                b.reports_progress = True

    async def _on_job_done(self, env: Envelope, e: JobCompleted | JobSkipped) -> None:
        """The attempt completed, or its job type found nothing to do (`skipped`, as final
        as completed)."""
        b, job = self._current(e.batch_id, e.job_id, e.attempt)
        if b is None or job is None:
            return
        del b.in_flight[e.job_id]
        if isinstance(e, JobSkipped):
            b.skipped += 1
        else:
            b.completed += 1
        b.ran(e.duration_ms)
        event = "skip" if isinstance(e, JobSkipped) else "complete"
        self._write_job(b, job.index, {"status": next_job_state(job.status, event)})
        b.dirty = True

    async def _on_job_failed(self, env: Envelope, e: JobFailed) -> None:
        b, job = self._current(e.batch_id, e.job_id, e.attempt)
        if b is None or job is None:
            return
        del b.in_flight[e.job_id]
        b.dirty = True
        write: dict[str, Any] = {
            "executor": e.executor_id,
            "finished_at": e.finished_at,
            "error_class": e.error_class,
            "error_message": e.error_message[:2000],
        }
        if not e.cancelled:
            b.ran(e.duration_ms)
        if e.cancelled or b.cancelling:
            b.cancelled += 1
            status = next_job_state(job.status, "cancel")
            self._write_job(b, job.index, {**write, "status": status})
            return
        failures = job.failures + 1
        if should_retry(b.config.retry, failures, e.retryable):
            delay = backoff_s(b.config.retry, failures)
            b.schedule_retry(job.index, job.attempt + 1, failures, self.clock() + delay)
            status = next_job_state(job.status, "retry")
            self._write_job(b, job.index, {**write, "status": status, "failures": failures})
            retry_at = datetime.now(UTC) + timedelta(seconds=delay)
            self._send(
                self.topics.batch_events,
                b.batch_id,
                JobRetryScheduled(
                    job_id=e.job_id,
                    batch_id=b.batch_id,
                    attempt=e.attempt,
                    retry_at=retry_at,
                    error_class=e.error_class,
                ),
                b,
            )
            return
        b.failed += 1
        status = next_job_state(job.status, "fail")
        if e.awaiting_decision:  # a person decides, then the job runs again: no error
            b.awaiting += 1
            write["awaiting"] = True
        self._write_job(b, job.index, {**write, "status": status, "failures": failures})
        if b.config.stop_on_error and not b.cancelling and not e.awaiting_decision:
            reason = f"job {e.job_id} failed: {e.error_class}: {e.error_message}"
            self._stop(b, reason=reason, skip=True)

    async def _on_heartbeat(self, env: Envelope, e: ExecutorHeartbeat) -> None:
        now = self.clock()
        before = self.executors.get(e.executor_id)
        self.executors[e.executor_id] = ExecutorSeen(
            e.slots_total,
            e.slots_free,
            now,
            e.slots_total if e.process_slots_total is None else e.process_slots_total,
            frozenset(e.process_job_types),
            e.grouped_dispatches,
            e.process_started_at,
        )
        if (
            before is not None
            and before.started_at is not None
            and e.process_started_at is not None
            and e.process_started_at > before.started_at
        ):
            self._release_lost(e.executor_id, e.running_jobs)
        for job_id, attempt in e.running_jobs.items():
            _, job = self._current(batch_id_of(job_id), job_id, attempt)
            if job is not None:
                job.lease_until = now + self.config.lease_s
                job.holder = e.executor_id

    def _release_lost(self, executor_id: str, listed: dict[str, int]) -> None:
        """The executor restarted: the jobs its previous process held, and this one does not
        list, ended with that process. Their leases expire now (the next round dispatches
        them again, as for any expired lease) rather than up to `lease_s` later."""
        lost = [
            job
            for b in self.batches.values()
            for job in b.in_flight.values()
            if job.holder == executor_id and listed.get(job.job_id) != job.attempt
        ]
        for job in lost:
            job.lease_until = 0.0
            job.holder = None
        if lost:
            log.warning(
                "executor %s restarted: %d job(s) its previous process held go again",
                executor_id,
                len(lost),
            )

    def _current(
        self, batch_id: str, job_id: str, attempt: int
    ) -> tuple[BatchRuntime | None, InFlight | None]:
        """The in-flight job if this event is about its current attempt; stale or duplicate
        results (an attempt already replaced or finished) give (batch, None)."""
        b = self.batches.get(batch_id)
        if b is None:
            return None, None
        job = b.in_flight.get(job_id)
        if job is None or job.attempt != attempt:
            return b, None
        return b, job

    async def _load_finished(self, batch_id: str) -> BatchRuntime | None:
        """A finished batch, brought back into memory for a retry."""
        doc = await self.store.find_batch(batch_id)
        if doc is None:
            return None
        b = _runtime_from_doc(doc)
        for chunk, first, count in await self.store.chunk_layout(b.batch_id):
            b.add_chunk(chunk, first, count)
        return b

    # ------------------------------------------------------------------ ticking
    async def tick(self) -> None:
        """One round: expire leases, dispatch, finish batches, publish progress."""
        async with self.lock:
            now = self.clock()
            self._expire_leases(now)
            if now - self._last_dependency_check >= self.config.dependency_check_s:
                self._last_dependency_check = now
                for b in [b for b in self.batches.values() if b.waiting_for]:
                    await self._resolve_dependencies(b)
            await self._dispatch(now)
            self._finish_done()
            if now - self._last_progress >= self.config.progress_interval_s:
                self._last_progress = now
                self._watch_deadlines(now)
                for b in self.batches.values():
                    if b.status == "paused" and b.inactive_since is None and not b.in_flight:
                        b.paused(self._at())  # its last running job ended: it stands still
                        b.dirty = True
                    # By counts, not by `dirty`: a flush clears `dirty` when it saves, so a
                    # paused batch whose in-flight jobs finish would never report them.
                    if (
                        b.dirty
                        or b.counts() != b.reported
                        or abs(b.running_done() - b.reported_running) >= RUNNING_DONE_STEP
                    ):
                        self._emit_snapshot(b, BatchProgress)
            await self._flush()

    def capacity(self, now: float) -> int:
        return sum(e.slots_total for e in self._live(now))

    def _live(self, now: float) -> list[ExecutorSeen]:
        return [e for e in self.executors.values() if now - e.seen_at <= EXECUTOR_TTL_S]

    def _process_budget(self, now: float) -> tuple[frozenset[str], int]:
        """The job types that run in worker processes, and how many more of their jobs may be
        dispatched: executors run fewer of those at once than they have slots, and a job sent
        beyond that would wait in an executor instead of here, where priorities still act."""
        hosts = [e for e in self._live(now) if e.process_types]
        types = frozenset().union(*(e.process_types for e in hosts))
        if not types:
            return types, 0
        in_flight = sum(len(b.in_flight) for b in self.batches.values() if b.job_type in types)
        return types, sum(e.process_slots for e in hosts) + self.config.prefetch - in_flight

    def in_flight_total(self) -> int:
        return sum(len(b.in_flight) for b in self.batches.values())

    def _expire_leases(self, now: float) -> None:
        for b in self.batches.values():
            expired = [j for j in b.in_flight.values() if j.lease_until < now]
            for job in expired:
                del b.in_flight[job.job_id]
                b.dirty = True
                if b.cancelling:
                    b.cancelled += 1
                    self._cancel_job(b, job.index, job.attempt, job.status, b.stop_reason)
                else:
                    # The executor is gone; a new attempt does not spend the retry budget.
                    b.schedule_retry(job.index, job.attempt + 1, job.failures, now)
                    status = next_job_state(job.status, "lease_expired")
                    self._write_job(b, job.index, {"status": status, "lease_expired": True})
                log.warning("lease expired", extra={"job_id": job.job_id})

    async def _dispatch(self, now: float) -> None:
        in_flight = self.in_flight_total()
        budget = min(
            self.capacity(now) + self.config.prefetch - in_flight,
            self.config.global_max_in_flight - in_flight,
        )
        if budget <= 0:
            return
        picked: list[tuple[BatchRuntime, int, int, int]] = []
        process_types, process_budget = self._process_budget(now)

        def take(batch_id: str) -> bool:
            nonlocal process_budget
            b = self.batches[batch_id]
            isolated = b.job_type in process_types
            if isolated and process_budget <= 0:
                return False
            if not b.stagger_allows(now) or not self.rates.allow(b.job_type, now):
                return False
            claim = b.claim(now)
            if claim is None:
                return False
            if isolated:
                process_budget -= 1
            b.staggered(now)
            picked.append((b, *claim))
            b.last_slot_at = now
            return True

        wanting = [
            (
                b.batch_id,
                weight_of(b.priority_level, now - (b.last_slot_at or now)) * b.deadline_boost,
                b.room(now),
            )
            for b in self.batches.values()
        ]
        if not self.fair.pick(wanting, budget, take):
            return
        dispatched_at = datetime.fromtimestamp(now, UTC)
        grouped: dict[str, tuple[BatchRuntime, list[DispatchedJob]]] = {}
        for b, index, attempt, failures in picked:
            job_id = job_id_for(b.batch_id, index)
            item = await self._item(b, index)
            b.in_flight[job_id] = InFlight(
                job_id, index, attempt, failures, "dispatched", now + self.config.lease_s
            )
            self._write_job(
                b,
                index,
                {
                    "attempt": attempt,
                    "failures": failures,
                    "status": next_job_state("pending" if attempt == 1 else "retrying", "dispatch"),
                },
            )
            job = DispatchedJob(job_id=job_id, index=index, attempt=attempt, item=item)
            grouped.setdefault(b.batch_id, (b, []))[1].append(job)
            if b.status == "queued":
                b.status = next_batch_state(b.status, "start")
                b.started_at = dispatched_at
                self._emit_snapshot(b, BatchStarted)
            b.dirty = True
        groups = self._executors_take_groups(now)
        for b, jobs in grouped.values():
            group = self.config.dispatch_group if groups and _short(b) else 1
            self._send_dispatches(b, jobs, dispatched_at, group)

    def _send_dispatches(
        self, b: BatchRuntime, jobs: list[DispatchedJob], dispatched_at: datetime, group: int
    ) -> None:
        """A batch's jobs picked in one round, `group` to a `JobsDispatched` at most (as evenly
        as that allows: 40 jobs go as 20 and 20, not 32 and 8), each keyed by its first job's
        id to spread over the executors; one `JobDispatched` a job if `group` is 1."""
        parts = -(-len(jobs) // group)
        size = -(-len(jobs) // parts)
        for start in range(0, len(jobs), size):
            event = JobsDispatched(
                batch_id=b.batch_id,
                job_type=b.job_type,
                jobs=jobs[start : start + size],
                params=b.config.params,
                timeout_s=b.config.timeout_s,
                lease_s=self.config.lease_s,
                dispatched_at=dispatched_at,
                resource_limits=b.config.resource_limits,
            )
            if group > 1:
                self._send(self.topics.job_dispatch, event.jobs[0].job_id, event, b)
            else:
                for single in event.each():
                    self._send(self.topics.job_dispatch, single.job_id, single, b)

    def _executors_take_groups(self, now: float) -> bool:
        """Whether every live executor takes `JobsDispatched` (says so in its heartbeats).
        During a rolling upgrade an executor from before would dead-letter a group, and
        every executor reads the one dispatch topic."""
        return all(e.grouped_dispatches for e in self._live(now))

    async def _item(self, b: BatchRuntime, index: int) -> dict[str, Any]:
        chunk, offset = b.chunk_of(index)
        key = (b.batch_id, chunk)
        items = self._chunk_cache.pop(key, None)
        if items is None:
            items = await self.store.chunk_items(b.batch_id, chunk)
        self._remember_chunk(key, items)
        return items[offset]

    def _remember_chunk(self, key: tuple[str, int], items: list[dict[str, Any]]) -> None:
        """Keeps `items` as the most recently used chunk; drops the least recently used one
        beyond 64, so chunks arriving with a large upload do not push out the ones being
        dispatched."""
        self._chunk_cache.pop(key, None)
        self._chunk_cache[key] = items
        if len(self._chunk_cache) > 64:
            self._chunk_cache.pop(next(iter(self._chunk_cache)))

    async def _resolve_dependencies(self, b: BatchRuntime) -> None:
        """Sets what `b` still waits for; cancels it when a dependency can no longer hold."""
        deps = b.config.depends_on
        if deps is None or b.status != "queued" or b.cancelling:
            return
        waiting: list[str] = []
        unknown = False
        for dep in deps.batches:
            status = await self._status_of(dep)
            if status is None:
                unknown = True
                since = self._unknown_since.setdefault(b.batch_id, self.clock())
                if self.clock() - since < self.config.unknown_dependency_grace_s:
                    waiting.append(dep)
                    continue
                self._unknown_since.pop(b.batch_id, None)
                self._stop(b, reason=f"dependency {dep} does not exist", cancel=True)
                return
            if status == "completed" or (deps.on == "finished" and status in FINISHED):
                continue
            if status in FINISHED:
                self._stop(b, reason=f"dependency {dep} ended {status}", cancel=True)
                return
            waiting.append(dep)
        if not unknown:
            self._unknown_since.pop(b.batch_id, None)
        if waiting != b.waiting_for:
            b.waiting_for = waiting
            self._emit_snapshot(b, BatchProgress)

    async def _status_of(self, batch_id: str) -> str | None:
        active = self.batches.get(batch_id)
        if active is not None:
            return active.status
        if batch_id in self._finished_status:
            return self._finished_status[batch_id]
        doc = await self.store.find_batch(batch_id)
        return None if doc is None else str(doc["status"])

    def _watch_deadlines(self, now: float) -> None:
        """Raises the weight of batches whose deadline nears; emits at-risk and missed once."""
        for b in list(self.batches.values()):
            deadline = b.config.deadline
            if deadline is None or b.total is None or b.cancelling:
                continue
            # what its running jobs said they have done counts, as in the ETA shown
            finished = b.completed + b.failed + b.skipped + b.running_done()
            remaining = b.total - finished - b.cancelled
            elapsed = b.active_s(datetime.fromtimestamp(now, UTC))
            view = judge(now, deadline.timestamp(), remaining, finished, elapsed)
            b.deadline_boost = view.boost
            if view.at_risk and not b.deadline_at_risk_sent:
                b.deadline_at_risk_sent = True
                predicted = view.predicted_finish
                at_risk = BatchDeadlineAtRisk(
                    batch_id=b.batch_id,
                    deadline=deadline,
                    predicted_finish=None
                    if predicted is None
                    else datetime.fromtimestamp(predicted, UTC),
                )
                once = deterministic_event_id(b.batch_id, at_risk.TYPE, "once")
                self._send(self.topics.batch_events, b.batch_id, at_risk, b, event_id=once)
                self._emit_snapshot(b, BatchProgress)
            if view.missed and not b.deadline_missed_sent:
                b.deadline_missed_sent = True
                action = b.config.on_deadline_missed
                missed = BatchDeadlineMissed(batch_id=b.batch_id, deadline=deadline, action=action)
                once = deterministic_event_id(b.batch_id, missed.TYPE, "once")
                self._send(self.topics.batch_events, b.batch_id, missed, b, event_id=once)
                b.dirty = True
                if action == "cancel" and can_batch(b.status, "cancel"):
                    self._stop(b, reason="deadline missed", cancel=True)

    def _finish_done(self) -> None:
        for b in list(self.batches.values()):
            if b.status not in ("running", "retrying", "paused", "queued") or not b.all_finished:
                continue
            if b.status in ("paused", "queued") and not b.cancelling:
                continue
            state, event, reason = b.outcome()
            b.status = next_batch_state(b.status, event)
            b.finished(self._at())
            if state == "cancelled":
                self._emit_snapshot(b, BatchCancelled, reason=b.cancel_reason or "")
            elif state == "failed":
                self._emit_snapshot(b, BatchFailed, reason=reason)
                if b.config.rollback_on_failure and b.completed:  # else nothing to undo
                    self._send(
                        self.topics.batch_commands,
                        b.batch_id,
                        RollbackRequested(
                            batch_id=b.batch_id, requested_by="scheduler", reason="batch failed"
                        ),
                        b,
                    )
            else:
                self._emit_snapshot(b, BatchCompleted, outcome=state)
            self._final_docs.append(_doc_from_runtime(b))
            self._finished_status[b.batch_id] = b.status
            if len(self._finished_status) > 10_000:
                self._finished_status.pop(next(iter(self._finished_status)))
            self.fair.forget(b.batch_id)
            del self.batches[b.batch_id]
            for key in [k for k in self._chunk_cache if k[0] == b.batch_id]:
                del self._chunk_cache[key]

    # ------------------------------------------------------------------ output
    def _write_job(self, b: BatchRuntime, index: int, fields: dict[str, Any]) -> None:
        """Records a change of a job's state (written at the next flush). What recovery and
        retries read back: `status`, `attempt`, `failures`; a failure also keeps its error,
        executor and time. The rest of a job's story (when it was dispatched, started and
        finished, where) is the reporter's job view: each byte here is written under load,
        in every flush (docs/performance.md, session 13)."""
        self._job_writes.setdefault(b.batch_id, {}).setdefault(index, {}).update(fields)

    def _emit_snapshot(self, b: BatchRuntime, cls: type[BatchSnapshot], **extra: Any) -> None:
        b.seq += 1
        b.dirty = True
        b.reported = b.counts()
        b.reported_running = round(b.running_done(), 3)
        # The pace counts the jobs that ran: its marks leave out those ended without running
        # (cancelled, or skipped by a stop), and `window_done` adds the ones ended so far
        # back, so a reader's (jobs done now - window_done) is the jobs that ran since the mark.
        never_ran = b.cancelled + b.skipped_waiting
        window = b.pace_window(
            b.active_s(self._at()), b.reported.finished - never_ran + b.reported_running
        )
        event = cls(
            batch_id=b.batch_id,
            status=b.status,
            counts=b.reported,
            priority_level=b.priority_level,
            started_at=b.started_at,
            finished_at=b.finished_at,
            waiting_for=b.waiting_for,
            deadline_at_risk=b.deadline_at_risk_sent,
            inactive_s=round(b.inactive_s, 3),
            inactive_since=b.inactive_since,
            skipped_from=b.skipped_from,
            running_done=b.reported_running,
            average_job_ms=b.average_job_ms,
            window_active_s=None if window is None else round(window[0], 3),
            window_done=None if window is None else round(window[1] + never_ran, 3),
            **extra,
        )
        self._send(self.topics.batch_events, b.batch_id, event, b, seq=b.seq)

    def _send(
        self,
        topic: str,
        key: str,
        event: Event,
        b: BatchRuntime,
        seq: int = 0,
        event_id: str | None = None,
    ) -> None:
        if seq and event_id is None:
            event_id = deterministic_event_id(b.batch_id, event.TYPE, str(seq))
        env = envelope_for(event, producer=PRODUCER, tenant=b.tenant, seq=seq, event_id=event_id)
        self._outbox.append(Outgoing(topic, key, env))

    async def _flush(self) -> None:
        """Store first, then Kafka: a crash in between is healed by leases and re-emission.
        Nothing is written unless this instance still holds the scheduler lease. Effects are
        dropped from memory only once written: if the store or the broker fails, the next
        flush writes them again (every write is idempotent), since the redelivered events
        that caused them are recognised as seen and change nothing."""
        if not self.fence():
            raise LeadershipLost("this scheduler's lease is not valid; not writing")
        dirty = [b for b in self.batches.values() if b.dirty]
        resting = [_doc_from_runtime(b) for b in self._resting.values()]
        # The writes are independent of each other (each idempotent): made at once, the
        # flush waits for the slowest instead of their sum. It is on the path of every
        # dispatch (docs/performance.md, session 13).
        job_writes = list(self._job_writes.items())
        results = await asyncio.gather(
            *(self.store.write_jobs(batch_id, changes) for batch_id, changes in job_writes),
            self.store.save_batches(
                [_doc_from_runtime(b) for b in dirty] + self._final_docs + resting
            ),
            return_exceptions=True,
        )
        for (batch_id, _), result in zip(job_writes, results, strict=False):
            if not isinstance(result, BaseException):
                del self._job_writes[batch_id]
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        self._final_docs = []
        self._resting = {}
        for b in dirty:
            b.dirty = False
        if self._outbox:
            await self.publisher.publish(self._outbox)
            self._outbox = []


def _unrecorded(b: BatchRuntime, states: dict[int, dict[str, Any]]) -> list[int]:
    """Jobs the batch's saved `next_index` has passed that have no state: a flush saves the
    batch and its jobs' states at once, and a scheduler killed between the two leaves the
    first without the second. Their dispatch was never published (that comes after both),
    so they never ran. (Jobs skipped by a stop have no state either: they are past
    `skipped_from`.)"""
    end = b.next_index if b.skipped_from is None else min(b.next_index, b.skipped_from)
    return [i for i in range(end) if i not in states]


def _uncounted(b: BatchRuntime) -> int:
    """Of a batch being stopped, the jobs `_unrecorded` would name, which it cannot: the
    stop ended every job not dispatched at once, recording no state for them (their number
    is in the saved counts). The saved counts had these as dispatched, and nothing is in
    flight for them: they are the jobs no count holds."""
    if b.total is None or b.next_index < b.total:
        return 0
    held = b.completed + b.failed + b.skipped + b.cancelled + len(b.in_flight) + len(b.retries)
    return max(0, b.total - held)


def _short(b: BatchRuntime) -> bool:
    """Whether a batch's jobs are short enough to be dispatched in groups. A group goes to
    one executor, so groups spread a round's jobs less evenly than a message a job, and a job
    left waiting there for a slot while another executor has one free waits about as long as
    a job runs: for jobs under `GROUP_JOBS_UNDER_MS` that is short, and the messages saved
    are much of their cost (docs/performance.md, session 20). Before any of a batch's jobs
    has ended, its jobs go one a message."""
    return b.job_ms is not None and b.job_ms < GROUP_JOBS_UNDER_MS


def _doc_from_runtime(b: BatchRuntime) -> dict[str, Any]:
    return {
        "_id": b.batch_id,
        "tenant": b.tenant,
        "job_type": b.job_type,
        "config": b.config.model_dump(mode="json"),
        "priority_level": b.priority_level,
        "status": b.status,
        "total": b.total,
        "next_index": b.next_index,
        "seq": b.seq,
        "counts": b.counts().model_dump(),
        "cancelling": b.cancelling,
        "stop_reason": b.stop_reason,
        "cancel_reason": b.cancel_reason,
        "started_at": b.started_at,
        "finished_at": b.finished_at,
        "waiting_for": b.waiting_for,
        "deadline_at_risk_sent": b.deadline_at_risk_sent,
        "deadline_missed_sent": b.deadline_missed_sent,
        "rollback_id": b.rollback_id,
        "skipped_from": b.skipped_from,
        "skipped_waiting": b.skipped_waiting,
        "inactive_s": b.inactive_s,
        "inactive_since": b.inactive_since,
        "ran_ms": b.ran_ms,
        "ran_count": b.ran_count,
        "awaiting": b.awaiting,
        "job_ms": b.job_ms,
        "window_from": None if b.window_from is None else list(b.window_from),
        "window_next": None if b.window_next is None else list(b.window_next),
    }


def _runtime_from_doc(doc: dict[str, Any]) -> BatchRuntime:
    b = BatchRuntime(
        batch_id=doc["_id"],
        tenant=doc.get("tenant", "default"),
        job_type=doc["job_type"],
        config=validate_tolerantly(BatchConfig, doc["config"]),
        priority_level=doc.get("priority_level", 5),
        status=doc["status"],
        total=doc.get("total"),
        next_index=doc.get("next_index", 0),
        seq=doc.get("seq", 0),
        cancelling=doc.get("cancelling", False),
        stop_reason=doc.get("stop_reason"),
        cancel_reason=doc.get("cancel_reason"),
        started_at=doc.get("started_at"),
        finished_at=doc.get("finished_at"),
        waiting_for=list(doc.get("waiting_for") or []),
        deadline_at_risk_sent=doc.get("deadline_at_risk_sent", False),
        deadline_missed_sent=doc.get("deadline_missed_sent", False),
        rollback_id=doc.get("rollback_id") or "",
        skipped_from=doc.get("skipped_from"),
        skipped_waiting=doc.get("skipped_waiting", 0),
        inactive_s=doc.get("inactive_s", 0.0),
        inactive_since=doc.get("inactive_since"),
        ran_ms=doc.get("ran_ms", 0.0),
        ran_count=doc.get("ran_count", 0),
        awaiting=doc.get("awaiting", 0),
        job_ms=doc.get("job_ms"),
        window_from=_mark(doc.get("window_from")),
        window_next=_mark(doc.get("window_next")),
    )
    counts = doc.get("counts") or {}
    b.completed = counts.get("completed", 0)
    b.failed = counts.get("failed", 0)
    b.cancelled = counts.get("cancelled", 0)
    b.skipped = counts.get("skipped", 0)
    return b


def _mark(stored: Any) -> tuple[float, float] | None:
    """A pace mark as stored (a pair), or None (none stored, or a scheduler from before)."""
    if isinstance(stored, list | tuple) and len(stored) == 2:
        return float(stored[0]), float(stored[1])
    return None
