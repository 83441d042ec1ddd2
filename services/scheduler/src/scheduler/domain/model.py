"""The scheduler's in-memory view of one batch. Plain data and arithmetic, no I/O.

Jobs that were never dispatched have no document: they are the indexes at or above
`next_index`. Only in-flight jobs (dispatched or running) and jobs waiting to retry are held
individually, so memory grows with concurrency, not with batch size."""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field
from datetime import datetime

from contracts.vocabulary import BatchConfig, ProgressCounts

PACE_WINDOW_S = 30.0
"""Seconds of active time between the marks a batch's recent pace is measured from (its
ETA follows a change of pace within one to two of them)."""


@dataclass
class InFlight:
    job_id: str
    index: int
    attempt: int
    failures: int
    status: str  # "dispatched" | "running"
    lease_until: float
    percent: float | None = None  # its latest progress report, if its job type reports any
    holder: str | None = None  # the executor that said it runs the job (heartbeat, JobStarted)


@dataclass(order=True)
class PendingRetry:
    ready_at: float
    index: int
    attempt: int = field(compare=False)
    failures: int = field(compare=False)


@dataclass
class BatchRuntime:
    batch_id: str
    tenant: str
    job_type: str
    config: BatchConfig
    priority_level: int
    status: str
    total: int | None = None
    chunk_starts: list[int] = field(default_factory=list)
    chunk_numbers: list[int] = field(default_factory=list)
    known_items: int = 0
    next_index: int = 0
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    in_flight: dict[str, InFlight] = field(default_factory=dict)
    retries: list[PendingRetry] = field(default_factory=list)
    cancelled_indexes: set[int] = field(default_factory=set)
    cancelling: bool = False
    stop_reason: str | None = None
    cancel_reason: str | None = None
    seq: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_slot_at: float = 0.0
    dirty: bool = False
    waiting_for: list[str] = field(default_factory=list)
    next_stagger_at: float = 0.0
    deadline_boost: float = 1.0
    deadline_at_risk_sent: bool = False
    deadline_missed_sent: bool = False
    reported: ProgressCounts | None = None  # the counts of the last snapshot sent
    rollback_id: str = ""  # the rollback that last moved the batch to rolling_back
    # How long its jobs ran lately: a moving average of their outcomes' `duration_ms` (None
    # before the first outcome). Only short jobs are dispatched in groups.
    job_ms: float | None = None
    # Where the jobs skipped by `stop_on_error` begin: every index from here that was not
    # dispatched (a retry of the batch runs them). None when none were skipped.
    skipped_from: int | None = None
    skipped_waiting: int = 0  # how many of `skipped` those are (the rest: their job type's)
    # How many of `failed` wait for a person's decision (`JobFailed.awaiting_decision`): not
    # errors of the batch for `stop_on_error` and its failed outcome.
    awaiting: int = 0
    # Time since `started_at` when it could not move, not counted as its elapsed time by
    # throughput, ETA and deadline judgements: paused (from when its last running job
    # ended), or finished before a retry. A pause under way began at `inactive_since`.
    inactive_s: float = 0.0
    inactive_since: datetime | None = None
    # Every ended attempt's run time (cancelled ones aside), for its mean.
    ran_ms: float = 0.0
    ran_count: int = 0
    reports_progress: bool = False  # one of its jobs reported a percent (`running_done`)
    reported_running: float = 0.0  # the `running_done` of the last snapshot sent
    # Its recent pace, for the ETA: (active seconds, jobs moved) at the start of the window
    # readers measure it over, and at the start of the next one (see `pace_window`); kept
    # across a takeover, as is `job_ms`.
    window_from: tuple[float, float] | None = None
    window_next: tuple[float, float] | None = None

    # --- items -----------------------------------------------------------------------------
    def add_chunk(self, chunk: int, first_index: int, count: int) -> bool:
        """Records a chunk of items; False if it was already known."""
        if chunk in self.chunk_numbers:
            return False
        pos = bisect.bisect(self.chunk_starts, first_index)
        self.chunk_starts.insert(pos, first_index)
        self.chunk_numbers.insert(pos, chunk)
        self.known_items += count
        return True

    def chunk_of(self, index: int) -> tuple[int, int]:
        """(chunk number, offset inside it) of a job index."""
        pos = bisect.bisect_right(self.chunk_starts, index) - 1
        return self.chunk_numbers[pos], index - self.chunk_starts[pos]

    # --- time ------------------------------------------------------------------------------
    def paused(self, at: datetime) -> None:
        """Records that it stopped moving at `at` (a pause before it started costs nothing)."""
        if self.started_at is not None and self.inactive_since is None:
            self.inactive_since = at

    def moving(self, at: datetime) -> None:
        """Records that it moves again at `at`: resumed, or retried after it had finished."""
        since = self.inactive_since or self.finished_at
        if since is not None and self.started_at is not None:
            self.inactive_s += max(0.0, (at - since).total_seconds())
        self.inactive_since = None
        self.finished_at = None

    def finished(self, at: datetime) -> None:
        """Records its end at `at` (a pause under way ends there too)."""
        self.moving(at)
        self.finished_at = at

    def active_s(self, at: datetime) -> float:
        """Seconds it has been able to move since it started, as of `at`."""
        if self.started_at is None:
            return 0.0
        end = self.finished_at or self.inactive_since or at
        return max(0.0, (end - self.started_at).total_seconds() - self.inactive_s)

    @property
    def average_job_ms(self) -> float | None:
        """The mean run time of its jobs' attempts that ended (None before the first)."""
        return round(self.ran_ms / self.ran_count, 1) if self.ran_count else None

    def pace_window(self, active_s: float, moved: float) -> tuple[float, float] | None:
        """Marks a point of its run (`active_s` seconds of active time, `moved` jobs that ran
        and ended, or done by running ones) and returns where the window of its recent pace
        begins: a mark taken every `PACE_WINDOW_S` of active time, the one before the
        latest, so the window spans one to two of them up to now. None until the first full
        one."""
        if self.window_next is None:
            self.window_next = (active_s, moved)
        elif active_s - self.window_next[0] >= PACE_WINDOW_S:
            self.window_from, self.window_next = self.window_next, (active_s, moved)
        return self.window_from

    def running_done(self) -> float:
        """How much of its running jobs is done, in jobs, by their own reports (two jobs at
        half way: 1.0); 0 for a batch whose jobs report no percent."""
        if not self.reports_progress:
            return 0.0
        return sum(min(max(j.percent or 0.0, 0.0), 100.0) for j in self.in_flight.values()) / 100

    # --- work ------------------------------------------------------------------------------
    @property
    def dispatchable(self) -> bool:
        return (
            self.status in ("queued", "running", "retrying")
            and not self.cancelling
            and not self.waiting_for
        )

    def ran(self, duration_ms: float) -> None:
        """Records how long one of its jobs ran."""
        self.ran_ms += duration_ms
        self.ran_count += 1
        if self.job_ms is None:
            self.job_ms = duration_ms
        else:
            self.job_ms += 0.2 * (duration_ms - self.job_ms)

    def stagger_allows(self, now: float) -> bool:
        """False while the batch's stagger holds its next start back."""
        stagger = self.config.stagger
        if stagger is None or (stagger.ramp_up_jobs and self.next_index >= stagger.ramp_up_jobs):
            return True
        return now >= self.next_stagger_at

    def staggered(self, now: float) -> None:
        """Records a start for the stagger."""
        if self.config.stagger is not None:
            self.next_stagger_at = now + self.config.stagger.start_interval_ms / 1000

    def ready_retries(self, now: float) -> int:
        return sum(1 for r in self.retries if r.ready_at <= now)

    @property
    def sequential(self) -> bool:
        return self.config.execution == "sequential"

    def room(self, now: float) -> int:
        """How many more jobs this batch could dispatch now."""
        if not self.dispatchable:
            return 0
        if self.sequential:
            # one at a time, and a job waiting for its retry holds the next one back
            if self.in_flight or (self.retries and not self.ready_retries(now)):
                return 0
            return min(1, (self.known_items - self.next_index) + self.ready_retries(now))
        limit = self.config.max_concurrent_jobs - len(self.in_flight)
        work = (self.known_items - self.next_index) + self.ready_retries(now)
        return max(0, min(limit, work))

    def claim(self, now: float) -> tuple[int, int, int] | None:
        """Takes the next job to dispatch: a ready retry first, else the next new index
        (not while a sequential batch has a job in flight or waiting for its retry).
        Returns (index, attempt, failures)."""
        if self.retries and self.retries[0].ready_at <= now:
            r = heapq.heappop(self.retries)
            return r.index, r.attempt, r.failures
        if self.sequential and (self.in_flight or self.retries):
            return None
        while self.next_index < self.known_items:
            index = self.next_index
            self.next_index += 1
            if index in self.cancelled_indexes:
                self.cancelled += 1
                continue
            return index, 1, 0
        return None

    def schedule_retry(self, index: int, attempt: int, failures: int, ready_at: float) -> None:
        heapq.heappush(self.retries, PendingRetry(ready_at, index, attempt, failures))

    def cancel_waiting(self) -> int:
        """Ends every job that has not been dispatched as cancelled; returns how many."""
        n = len(self.retries)
        self.retries.clear()
        if self.total is not None:
            remaining = self.total - self.next_index
            self.next_index = self.total
        else:
            remaining = self.known_items - self.next_index
            self.next_index = self.known_items
        n += remaining
        self.cancelled += n
        return n

    def skip_waiting(self) -> int:
        """Ends every job that was never dispatched as skipped (one cancelled on its own
        stays cancelled) and those waiting for a retry (they ran) as cancelled; returns how
        many were skipped."""
        end = self.total if self.total is not None else self.known_items
        start = self.next_index
        cancelled = sum(1 for i in self.cancelled_indexes if start <= i < end)
        self.next_index = end
        self.cancelled += cancelled + len(self.retries)
        self.retries.clear()
        skipped = end - start - cancelled
        self.skipped += skipped
        self.skipped_waiting += skipped
        if skipped and self.skipped_from is None:
            self.skipped_from = start
        return skipped

    def unskip(self) -> int:
        """Makes the skipped jobs pending again (a retry of the batch); returns how many."""
        if self.skipped_from is None:
            return 0
        start, end = self.skipped_from, self.next_index
        again = sum(1 for i in self.cancelled_indexes if start <= i < end)
        self.cancelled -= again  # counted again when dispatching passes them
        n = self.skipped_waiting
        self.skipped -= n
        self.skipped_waiting = 0
        self.next_index = start
        self.skipped_from = None
        return n

    @property
    def all_finished(self) -> bool:
        return (
            self.total is not None
            and self.next_index >= self.total
            and not self.in_flight
            and not self.retries
        )

    def counts(self) -> ProgressCounts:
        dispatched = sum(1 for j in self.in_flight.values() if j.status == "dispatched")
        running = len(self.in_flight) - dispatched
        total = self.total if self.total is not None else self.known_items
        return ProgressCounts(
            total=total,
            pending=max(0, total - self.next_index),
            dispatched=dispatched,
            running=running,
            completed=self.completed,
            failed=self.failed,
            retrying=len(self.retries),
            skipped=self.skipped,
            cancelled=self.cancelled,
            awaiting_decision=self.awaiting,
        )

    def outcome(self) -> tuple[str, str, str]:
        """The finished batch's state, event and reason (for a failed one): cancelled;
        failed by `stop_on_error`, by the failure threshold, or because no job completed and
        some failed (jobs awaiting a decision are not counted in those two); else completed,
        with errors if any job failed or awaits a decision."""
        if self.cancelling and self.stop_reason is None:
            return "cancelled", "cancel", ""
        if self.stop_reason is not None:
            return "failed", "fail", self.stop_reason
        total = max(self.total or 0, 1)
        errors = self.failed - self.awaiting  # a job awaiting a decision did nothing wrong
        if errors and errors / total > self.config.failure_threshold:
            return "failed", "fail", "failure threshold"
        if errors and not self.completed and self.skipped == self.skipped_waiting:
            # "with errors" says some work was done: a batch none of whose jobs completed
            # (or was skipped by its job type, having nothing to do) did none, whatever the
            # threshold allows
            return "failed", "fail", "no job completed"
        if self.failed:
            return "completed_with_errors", "complete_with_errors", ""
        return "completed", "complete", ""
