"""The executor's service layer: accept dispatched jobs into bounded slots, run them with a
timeout and cooperative cancellation, report the outcome.

A dispatch is acknowledged (its offset committed) once its job holds a slot and runs. The
scheduler's lease, set at the dispatch and renewed by this executor's heartbeats, covers it
from then on: if this process dies, the lease expires and the job is dispatched again as a
new attempt. `JobStarted` is published for a job still running `start_notice_s` after it
began; one that ended sooner is reported by its outcome alone (which carries `started_at`):
for short jobs `JobStarted` was a third of the messages on `job.events`, each one handled by
the scheduler and the reporter too (docs/performance.md, session 17). With no start notice,
every job is reported started, and its dispatch acknowledged once that is acked by Kafka."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contracts.codec import envelope_for
from contracts.envelope import Envelope
from contracts.events import (
    BackupCreated,
    CancelBroadcast,
    Event,
    ExecutorHeartbeat,
    JobCompleted,
    JobDispatched,
    JobFailed,
    JobProgress,
    JobsDispatched,
    JobSkipped,
    JobStarted,
)
from contracts.events.execution import MAX_SKIP_REASON, Warnings, output_metrics
from contracts.topics import Topics, batch_id_of
from contracts.vocabulary import Severity, default_severity
from executor.adapters.backups import BackupStore
from executor.adapters.isolation import ProcessIsolation
from executor.domain.limits import Deadline, alarm_after, attempt_deadline
from executor.domain.worker_protocol import WorkerRequest, trace_of
from jobkit import AwaitingDecision, JobContext, JobError, JobType, SkipJob
from servicekit import tracing
from servicekit.backups import decode_snapshot
from servicekit.logging import log_context
from servicekit.publisher import EventPublisher, Outgoing

log = logging.getLogger(__name__)

# A dispatch is taken only with this much of its lease left: time for a heartbeat (every
# second) to reach the scheduler and renew it.
LEASE_MARGIN_S = 3.0
# A job still running this long after it began is reported started.
START_NOTICE_S = 0.02


@dataclass
class RunningJob:
    dispatch: JobDispatched
    tenant: str
    started_at: datetime
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    traceparent: str | None = None  # the dispatch's: this job's events join its trace
    isolated: bool = False  # holds one of the executor's process slots too
    # Its run is over and its outcome known (being published): no longer worth a `JobStarted`.
    ended: bool = False
    # The `accept` that started it returned, so its dispatch is acknowledged: Kafka will not
    # deliver it to another executor. One not handed over is given up when draining.
    handed: bool = False
    warnings: Warnings = field(default_factory=Warnings)  # what the job noted (`ctx.warn`)
    resources: dict[str, float] = field(default_factory=dict)  # its worker's, if isolated


@dataclass
class Context:
    """The `jobkit.JobContext` given to a running job."""

    job_id: str
    batch_id: str
    attempt: int
    params: dict[str, Any]
    _report: Callable[[float | None, str], Any]
    _cancelled: Callable[[], bool] = lambda: False
    warnings: Warnings = field(default_factory=Warnings)

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled()

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        await self._report(percent, message)

    def warn(self, message: str) -> None:
        self.warnings.add(message)


@dataclass
class Executor:
    """`slots`: jobs run at once (what heartbeats announce). `process_slots`: of those, jobs of
    process-isolated types at once (each is a worker process); `None` means `slots`."""

    executor_id: str
    slots: int
    job_types: dict[str, JobType]
    publisher: EventPublisher
    topics: Topics
    running: dict[str, RunningJob] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    backups: BackupStore | None = None
    isolation: ProcessIsolation | None = None  # made on first use if not given
    waiting: dict[str, int] = field(default_factory=dict)  # job id → attempt, slot awaited
    # Waiting jobs a cancel broadcast named: they report cancelled once they get a slot.
    cancelled_waiting: set[str] = field(default_factory=set)
    process_slots: int | None = None
    start_notice_s: float = START_NOTICE_S
    on_started: Callable[[Sequence[JobDispatched]], None] = lambda jobs: None  # for metrics
    draining: bool = False  # shutting down: takes no more jobs, heartbeats announce no slots
    # This process's start: a restart under the same id tells the scheduler that the jobs the
    # previous process held are lost (it dispatches them again without waiting for leases).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _notices: set[asyncio.Task[None]] = field(default_factory=set)  # held: not collected
    _free: asyncio.Semaphore = field(init=False)
    _processes: asyncio.Semaphore = field(init=False)
    _process_slots: int = field(init=False)
    _process_types: frozenset[str] = field(init=False)  # hosted types run in worker processes
    _done: int = 0

    def __post_init__(self) -> None:
        self._free = asyncio.Semaphore(self.slots)
        self._process_slots = min(self.process_slots or self.slots, self.slots)
        self._processes = asyncio.Semaphore(self._process_slots)
        self._process_types = frozenset(
            name for name, t in self.job_types.items() if t.isolation == "process"
        )

    @property
    def slots_free(self) -> int:
        return self.slots - len(self.running)

    async def accept(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        """Takes each dispatched job (a `JobDispatched`'s, or each of a `JobsDispatched`'s):
        waits for a free slot and runs it (`_start`: reported started if it still runs after
        the start notice; jobs that find a slot together in one round trip).

        A dispatch is taken only while its lease has `LEASE_MARGIN_S` to spare, so the
        heartbeat that renews it reaches the scheduler before the lease runs out; a later one
        (a redelivery after an executor died, say) is left to expire and be dispatched again,
        never run beside its next attempt. Jobs waiting here for a slot are in the heartbeat
        too: a job held behind long ones is not given to another executor meanwhile."""
        held: list[tuple[Envelope, JobDispatched]] = []
        started: list[RunningJob] = []  # acknowledged when this call returns
        for envelope, event in items:
            for dispatch in _dispatched(event):
                if self._takes(dispatch):
                    self.waiting[dispatch.job_id] = dispatch.attempt
                    held.append((envelope, dispatch))
                elif (job := self.running.get(dispatch.job_id)) is not None and (
                    job.dispatch.attempt == dispatch.attempt
                ):
                    started.append(job)  # delivered again while it runs
        taken: list[RunningJob] = []  # holding slots, not started yet
        try:
            for envelope, event in held:
                isolated = event.job_type in self._process_types
                if taken and (self._free.locked() or (isolated and self._processes.locked())):
                    await self._start(taken)  # run what we hold before waiting for a slot
                    started += taken
                    taken = []
                await self._acquire(isolated)
                self.waiting.pop(event.job_id, None)
                job = RunningJob(
                    event,
                    envelope.tenant,
                    datetime.now(UTC),
                    cancel_requested=event.job_id in self.cancelled_waiting,
                    traceparent=envelope.traceparent,
                    isolated=isolated,
                )
                self.running[event.job_id] = job
                taken.append(job)
            if taken:
                await self._start(taken)
                started += taken
                taken = []
        except BaseException:
            for job in taken:  # cancelled (the subscriber stopped) while waiting for a slot
                self._release(job)
            raise
        else:
            for job in started:
                job.handed = True
        finally:
            for _, event in held:
                self.waiting.pop(event.job_id, None)
                self.cancelled_waiting.discard(event.job_id)

    async def _acquire(self, isolated: bool) -> None:
        """A slot, and for a process-isolated job a process slot first (waiting for one holds
        no slot that an inline job could use)."""
        if not isolated:
            await self._free.acquire()
            return
        await self._processes.acquire()
        try:
            await self._free.acquire()
        except BaseException:
            self._processes.release()
            raise

    def _takes(self, event: JobDispatched) -> bool:
        if event.job_id in self.running or event.job_id in self.waiting:
            return False
        spare = event.lease_s - (self.clock() - event.dispatched_at.timestamp())
        if spare < min(LEASE_MARGIN_S, event.lease_s / 2):
            log.info("skipping a dispatch near its lease's end", extra={"job_id": event.job_id})
            return False
        return True

    async def _start(self, jobs: list[RunningJob]) -> None:
        """Runs the jobs; those still running after `start_notice_s` are reported started in
        one round trip, in the background. Without a notice, all are reported started first
        (raising if that fails: the dispatches are delivered again)."""
        self.on_started([j.dispatch for j in jobs])
        if self.start_notice_s <= 0:
            try:
                await self.publisher.publish([self._started(j) for j in jobs])
            except BaseException:
                for j in jobs:
                    self._release(j)
                raise
        tasks: list[asyncio.Task[None]] = []
        for j in jobs:
            j.task = asyncio.create_task(self._run(j))
            tasks.append(j.task)
        if self.start_notice_s > 0:
            notice = asyncio.create_task(self._notice(jobs, tasks))
            self._notices.add(notice)
            notice.add_done_callback(self._notices.discard)

    async def _notice(self, jobs: list[RunningJob], tasks: list[asyncio.Task[None]]) -> None:
        await asyncio.wait(tasks, timeout=self.start_notice_s)
        # Not a job that has ended and whose outcome is being published: under load the
        # broker's ack of it alone can take longer than the notice (docs/performance.md,
        # session 20: half of 20,000 no-op jobs were announced started for that reason).
        running = [j for j, task in zip(jobs, tasks, strict=True) if not (task.done() or j.ended)]
        if not running:
            return
        try:
            await self.publisher.publish([self._started(j) for j in running])
        except Exception:  # the lease and the heartbeats still cover the jobs
            log.exception("reporting %d job(s) started failed", len(running))

    def _started(self, j: RunningJob) -> Outgoing:
        return Outgoing(
            self.topics.job_events,
            j.dispatch.batch_id,
            envelope_for(
                JobStarted(
                    job_id=j.dispatch.job_id,
                    batch_id=j.dispatch.batch_id,
                    attempt=j.dispatch.attempt,
                    executor_id=self.executor_id,
                    started_at=j.started_at,
                ),
                producer=self.executor_id,
                tenant=j.tenant,
                traceparent=j.traceparent,
            ),
        )

    async def _run(self, job: RunningJob) -> None:
        d = job.dispatch
        attributes = {"batchyard.job_id": d.job_id, "batchyard.attempt": d.attempt}
        with (
            log_context(batch_id=d.batch_id, job_id=d.job_id),
            tracing.span(f"run {d.job_type}", parent=job.traceparent, attributes=attributes),
        ):
            await self._run_traced(job)

    async def _run_traced(self, job: RunningJob) -> None:
        d = job.dispatch
        result: Event
        try:
            if job.cancel_requested:  # named by a cancel while it waited for a slot
                raise asyncio.CancelledError
            output = await self._execute(job)
            result = JobCompleted(
                **self._ended(job),
                output=output,
                metrics=output_metrics(output),
                warnings=job.warnings.listed(),
                resources=job.resources,
            )
        except asyncio.CancelledError:
            if not job.cancel_requested:
                self._release(job)
                raise  # shutting down: the lease will bring the job back
            result = self._failure(job, "Cancelled", "cancelled on request", False, cancelled=True)
        except TimeoutError:
            result = self._failure(job, "JobTimeout", f"exceeded {d.timeout_s}s", True)
        except SkipJob as exc:
            result = JobSkipped(**self._ended(job), reason=exc.reason[:MAX_SKIP_REASON])
        except JobError as exc:
            result = self._failure(
                job,
                exc.error_class,
                str(exc),
                exc.retryable,
                trace=exc.trace,
                severity=exc.severity,
                awaiting_decision=isinstance(exc, AwaitingDecision),
            )
        except ValidationError as exc:
            result = self._failure(job, "InvalidInput", str(exc), False)
        except Exception as exc:
            log.exception("job raised", extra={"job_id": d.job_id})
            result = self._failure(job, type(exc).__name__, str(exc), False, trace=trace_of(exc))
        job.ended = True
        try:
            await self._publish(job, result)
        finally:
            self._release(job)

    async def _execute(self, job: RunningJob) -> dict[str, Any]:
        d = job.dispatch
        job_type = self.job_types.get(d.job_type)
        if job_type is None:
            raise _Unknown(f"no executor here has job type {d.job_type!r}")
        item = job_type.parse_input({**d.params.get("defaults", {}), **d.item})

        async def report(percent: float | None, message: str) -> None:
            await self._publish(
                job,
                JobProgress(
                    job_id=d.job_id,
                    batch_id=d.batch_id,
                    attempt=d.attempt,
                    executor_id=self.executor_id,
                    percent=percent,
                    message=message,
                ),
            )

        deadline = attempt_deadline(d.timeout_s, d.resource_limits)
        try:
            async with asyncio.timeout(deadline.seconds) as scope:
                if job_type.isolation == "process":
                    return await self._isolated(job, job_type, report, deadline)
                ctx = Context(
                    d.job_id,
                    d.batch_id,
                    d.attempt,
                    d.params,
                    report,
                    lambda: job.cancel_requested,
                    job.warnings,
                )
                backup = await self._backup(job, job_type, item, ctx)
                output = job_type.shape_output(await job_type.run(item, ctx))
                if backup is not None and self.backups is not None:
                    after = await self._state_after(job_type, item, backup, ctx)
                    await self.backups.mark_completed(d.job_id, datetime.now(UTC), after)
                return output
        except TimeoutError:
            exceeded = deadline.exceeded() if scope.expired() else None
            if exceeded is None:
                raise  # the batch's timeout_s, or the job's own TimeoutError: JobTimeout
            raise exceeded from None

    async def _isolated(
        self,
        job: RunningJob,
        job_type: JobType,
        report: Callable[[float | None, str], Awaitable[None]],
        deadline: Deadline,
    ) -> dict[str, Any]:
        """Runs the job in a worker process under the batch's resource limits."""
        d = job.dispatch
        if self.isolation is None:
            self.isolation = ProcessIsolation([type(job_type).__module__])
        limits = d.resource_limits
        request = WorkerRequest(
            job_type=f"{type(job_type).__module__}:{type(job_type).__qualname__}",
            job_id=d.job_id,
            batch_id=d.batch_id,
            attempt=d.attempt,
            item={**d.params.get("defaults", {}), **d.item},
            params=d.params,
            max_memory_mb=limits.max_memory_mb if limits is not None else None,
            max_cpu_s=limits.max_cpu_s if limits is not None else None,
            alarm_s=alarm_after(deadline),
        )
        return await self.isolation.run(request, limits, report, job.warnings, job.resources)

    async def _state_after(
        self, job_type: JobType, item: Any, backup: dict[str, Any], ctx: JobContext
    ) -> dict[str, str] | None:
        """What the job left (`JobType.state_of`), for a rollback to see later changes. The
        job's change is done: a failure here leaves the backup without it (a rollback then
        cannot check that job) rather than failing the job."""
        try:
            return await job_type.state_of(item, backup, ctx)
        except Exception:
            log.warning("state_of failed", exc_info=True, extra={"job_id": ctx.job_id})
            return None

    async def _backup(
        self, job: RunningJob, job_type: JobType, item: Any, ctx: JobContext
    ) -> dict[str, Any] | None:
        """With the batch's `backup_strategy: automatic` (the default for job types that can be
        rolled back), stores the job's backup before it runs and announces it. Returns the
        job's backup (its snapshot), or None if it has none."""
        d = job.dispatch
        strategy = d.params.get("backup_strategy", "automatic")
        if strategy != "automatic" or not job_type.supports_rollback() or self.backups is None:
            return None
        existing = await self.backups.get(d.job_id)
        if existing is not None:
            # an earlier attempt's backup is the state before the job
            return decode_snapshot(existing["data"])
        snapshot = await job_type.backup(item, ctx)
        if snapshot is None:
            return None
        record, created = await self.backups.put(
            d.job_id,
            batch_id=d.batch_id,
            job_type=d.job_type,
            snapshot=snapshot,
            job_id=d.job_id,
            item=d.item,
            attempt=d.attempt,
            created_at=datetime.now(UTC),
        )
        if created:
            await self._publish(
                job,
                BackupCreated(
                    job_id=d.job_id,
                    batch_id=d.batch_id,
                    backup_id=record["_id"],
                    checksum=record["checksum"],
                    size_bytes=record["size_bytes"],
                ),
            )
        return snapshot if created else decode_snapshot(record["data"])

    def _failure(
        self,
        job: RunningJob,
        error_class: str,
        message: str,
        retryable: bool,
        cancelled: bool = False,
        trace: str | None = None,
        severity: Severity | None = None,
        awaiting_decision: bool = False,
    ) -> JobFailed:
        """The attempt's failure; its severity the job type's, else the default (`critical`
        for an exception it did not mean to raise, the one with a stack trace)."""
        if severity is None and not cancelled:
            severity = default_severity(retryable, crashed=trace is not None)
        return JobFailed(
            **self._ended(job),
            error_class=error_class,
            error_message=message[:4000],
            retryable=retryable,
            cancelled=cancelled,
            traceback=trace,
            severity=severity,
            awaiting_decision=awaiting_decision,
        )

    def _ended(self, job: RunningJob) -> dict[str, Any]:
        """The fields every outcome of an attempt has: which attempt, where, when it ran."""
        d, finished = job.dispatch, datetime.now(UTC)
        return {
            "job_id": d.job_id,
            "batch_id": d.batch_id,
            "attempt": d.attempt,
            "executor_id": self.executor_id,
            "started_at": job.started_at,
            "finished_at": finished,
            "duration_ms": _ms(job.started_at, finished),
        }

    def _release(self, job: RunningJob) -> None:
        if self.running.pop(job.dispatch.job_id, None) is not None:
            self._free.release()
            if job.isolated:
                self._processes.release()
            self._done += 1

    async def _publish(self, job: RunningJob, event: Event) -> None:
        env = envelope_for(event, producer=self.executor_id, tenant=job.tenant)
        await self.publisher.publish([Outgoing(self.topics.job_events, job.dispatch.batch_id, env)])

    async def control(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        """Cancels the jobs named by a `CancelBroadcast`: running ones now, ones still waiting
        for a slot (or being reported started) before they run; each reports `JobFailed` with
        `cancelled`, which is what the scheduler waits for to count it out."""
        for _, event in items:
            if not isinstance(event, CancelBroadcast):
                continue
            for job in list(self.running.values()):
                if _names(event, job.dispatch.job_id):
                    job.cancel_requested = True
                    if job.task is not None:
                        job.task.cancel()
            self.cancelled_waiting.update(j for j in self.waiting if _names(event, j))

    def heartbeat(self) -> Outgoing:
        # A draining executor has no slots to offer: the scheduler counts it out of capacity.
        event = ExecutorHeartbeat(
            executor_id=self.executor_id,
            slots_total=0 if self.draining else self.slots,
            slots_free=0 if self.draining else self.slots_free,
            running=len(self.running),
            job_types=sorted(self.job_types),
            sent_at=datetime.now(UTC),
            running_jobs={
                **self.waiting,
                **{j.dispatch.job_id: j.dispatch.attempt for j in self.running.values()},
            },
            process_slots_total=0 if self.draining else self._process_slots,
            process_job_types=sorted(self._process_types),
            grouped_dispatches=True,
            process_started_at=self.started_at,
        )
        env = envelope_for(event, producer=self.executor_id)
        return Outgoing(self.topics.executor_heartbeats, self.executor_id, env)

    async def drain(self, within_s: float) -> None:
        """Lets the running jobs end, for up to `within_s`, once the dispatch subscriber has
        stopped (it left the consumer group, so other executors take its partitions now).
        Heartbeats go on meanwhile (renewing the jobs' leases) and announce no slots.

        A job whose dispatch was not acknowledged (the `accept` that started it was cancelled
        by the subscriber's stop) is given up at once, without an outcome: Kafka delivers its
        dispatch to another executor, which must not find it running here too. Jobs still
        running after `within_s` are cancelled by `shutdown`; their leases bring them back."""
        self.draining = True
        for job in list(self.running.values()):
            if not job.handed and job.task is not None:
                job.task.cancel()
        tasks = [j.task for j in self.running.values() if j.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=within_s)

    async def shutdown(self) -> None:
        tasks = [j.task for j in self.running.values() if j.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _names(cancel: CancelBroadcast, job_id: str) -> bool:
    """Whether `cancel` is for this job: its batch's, and the job among `job_ids` if given."""
    return batch_id_of(job_id) == cancel.batch_id and (
        cancel.job_ids is None or job_id in cancel.job_ids
    )


class _Unknown(JobError):
    def __init__(self, message: str) -> None:
        super().__init__(message, error_class="UnknownJobType")


def _ms(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() * 1000, 3)


def _dispatched(event: Event) -> list[JobDispatched]:
    """The jobs a message on the dispatch topic hands over: its one, or its group's."""
    if isinstance(event, JobsDispatched):
        return event.each()
    if isinstance(event, JobDispatched):
        return [event]
    return []
