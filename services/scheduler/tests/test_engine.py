"""The scheduler engine with an in-memory store and a recording publisher."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scheduler_fakes import InMemorySchedulerStore

from contracts.codec import envelope_for
from contracts.events import (
    BatchCancelRequested,
    BatchCreated,
    BatchItemsAdded,
    BatchPauseRequested,
    BatchResumeRequested,
    BatchRetryRequested,
    BatchSubmitted,
    BatchUpdated,
    Event,
    ExecutorHeartbeat,
    JobCancelRequested,
    JobCompleted,
    JobDispatched,
    JobFailed,
    JobProgress,
    JobRetryRequested,
    JobsDispatched,
    JobSkipped,
    JobStarted,
    RollbackCompleted,
    RollbackFailed,
    RollbackRequested,
    RollbackStarted,
    rollback_id_of,
)
from contracts.topics import Topics
from contracts.vocabulary import BatchConfig, RetryPolicy
from scheduler.handlers.engine import Scheduler, SchedulerConfig
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


class Harness:
    def __init__(
        self,
        store: InMemorySchedulerStore | None = None,
        lease_s: float = 10,
        rate_limits: dict[str, float] | None = None,
        dispatch_group: int = 32,
    ) -> None:
        self.store = store or InMemorySchedulerStore()
        self.out = RecordingPublisher()
        self.clock = Clock()
        self.s = Scheduler(
            store=self.store,
            publisher=self.out,
            topics=Topics(),
            config=SchedulerConfig(
                lease_s=lease_s,
                prefetch=0,
                progress_interval_s=0,
                rate_limits=rate_limits or {},
                dispatch_group=dispatch_group,
            ),
            clock=self.clock,
        )

    async def send(self, *events: Event) -> None:
        await self.s.handle([(envelope_for(e, producer="test"), e) for e in events])

    async def submit(
        self, batch_id: str, n: int, job_type: str = "demo.sleep", **config: Any
    ) -> None:
        items = [{"seconds": 0, "i": i} for i in range(n)]
        await self.send(
            BatchCreated(
                batch_id=batch_id,
                name=batch_id,
                job_type=job_type,
                owner="u",
                config=BatchConfig(**config),
                created_at=NOW,
            ),
            *[
                BatchItemsAdded(batch_id=batch_id, chunk=c, first_index=s, items=items[s : s + 3])
                for c, s in enumerate(range(0, n, 3))
            ],
            BatchSubmitted(batch_id=batch_id, total_items=n, chunks=(n + 2) // 3),
        )

    async def started(self, batch_id: str, n: int, slots: int = 10, **config: Any) -> None:
        """A batch of `n` jobs submitted, an executor of `slots` slots, and a first round."""
        await self.submit(batch_id, n, **config)
        await self.capacity(slots)
        await self.s.tick()

    async def capacity(
        self,
        slots: int,
        running: dict[str, int] | None = None,
        *,
        grouped: bool = False,
        executor_id: str = "e1",
        process_started_at: datetime | None = None,
    ) -> None:
        """A heartbeat of an executor with `slots`; `grouped`: one that takes
        `JobsDispatched` (else one from before that event)."""
        await self.send(
            ExecutorHeartbeat(
                executor_id=executor_id,
                slots_total=slots,
                slots_free=slots,
                running=0,
                job_types=["demo.sleep"],
                sent_at=NOW,
                running_jobs=running or {},
                grouped_dispatches=grouped,
                process_started_at=process_started_at,
            )
        )

    def dispatched(self) -> list[JobDispatched]:
        """Every job dispatched so far, in order, whether alone or in a group."""
        out: list[JobDispatched] = []
        for m in self.out.sent:
            if m.envelope.type == "JobDispatched":
                out.append(JobDispatched.model_validate(m.envelope.data))
            elif m.envelope.type == "JobsDispatched":
                out.extend(JobsDispatched.model_validate(m.envelope.data).each())
        return out

    def types(self) -> list[str]:
        return [m.envelope.type for m in self.out.sent]

    async def complete(self, d: JobDispatched, duration_ms: float = 1) -> None:
        await self.send(JobCompleted(**ran(d, duration_ms)))

    async def fail(
        self,
        d: JobDispatched,
        retryable: bool,
        error_class: str = "Boom",
        error_message: str = "boom",
        cancelled: bool = False,
        awaiting_decision: bool = False,
    ) -> None:
        await self.send(
            JobFailed(
                **ran(d),
                error_class=error_class,
                error_message=error_message,
                retryable=retryable,
                cancelled=cancelled,
                awaiting_decision=awaiting_decision,
            )
        )

    async def park(self, d: JobDispatched) -> None:
        """The job type's `AwaitingDecision`: it waits for a person's decision."""
        await self.fail(d, retryable=False, error_class="AwaitingDecision", awaiting_decision=True)

    async def skip(self, d: JobDispatched) -> None:
        """The executor's report of a job its job type skipped (`SkipJob`)."""
        await self.send(JobSkipped(**ran(d), reason="nothing to do"))

    async def cancelled(self, d: JobDispatched) -> None:
        """The executor's report of an attempt it stopped on a cancel."""
        await self.fail(d, False, error_class="Cancelled", error_message="", cancelled=True)

    def last_snapshot(self) -> dict[str, Any]:
        snaps = [m.envelope for m in self.out.sent if m.envelope.type.startswith("Batch")]
        return {"type": snaps[-1].type, "seq": snaps[-1].seq, **snaps[-1].data}


def ran(d: JobDispatched, duration_ms: float = 1) -> dict[str, Any]:
    """The fields of an outcome of `d`'s attempt on executor e1."""
    return {
        "job_id": d.job_id,
        "batch_id": d.batch_id,
        "attempt": d.attempt,
        "executor_id": "e1",
        "started_at": NOW,
        "finished_at": NOW,
        "duration_ms": duration_ms,
    }


async def run_to_end(h: Harness) -> None:
    for _ in range(100):
        await h.s.tick()
        pending = [
            d for d in h.dispatched() if d.job_id in h.s.batches.get(d.batch_id, _NoBatch).in_flight
        ]
        if not pending and not h.s.batches:
            return
        for d in pending:
            await h.complete(d)
    raise AssertionError("the batch did not finish")


class _NoBatch:
    in_flight: dict[str, Any] = {}


async def test_a_batch_runs_to_completion_within_capacity() -> None:
    h = Harness()
    await h.started("b1", 10, slots=4)
    assert len(h.dispatched()) == 4
    assert "BatchStarted" in h.types()
    await run_to_end(h)
    final = h.last_snapshot()
    assert final["type"] == "BatchCompleted"
    assert final["outcome"] == "completed"
    assert final["counts"]["completed"] == 10
    assert final["counts"]["total"] == 10
    assert sorted(d.index for d in h.dispatched()) == list(range(10))
    assert h.store.batches["b1"]["status"] == "completed"
    seqs = [m.envelope.seq for m in h.out.sent if m.envelope.type.startswith("Batch")]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


async def test_executors_that_take_groups_get_a_batchs_short_jobs_in_few_messages() -> None:
    h = Harness(dispatch_group=32)
    await h.submit("b1", 70, max_concurrent_jobs=66)
    await h.capacity(1, grouped=True)
    await h.s.tick()
    # before any job of the batch has ended, how long they take is unknown: one a message
    [first] = h.dispatched()
    assert h.types().count("JobDispatched") == 1
    await h.complete(first)  # it ran 1 ms; the slot it freed took the next job
    sent = len(h.out.sent)
    await h.capacity(66, grouped=True)
    await h.s.tick()
    groups = [m for m in h.out.sent[sent:] if m.envelope.type == "JobsDispatched"]
    # 65 more slots, 32 jobs a message at most: three messages, as even as that allows
    assert sorted(len(m.envelope.data["jobs"]) for m in groups) == [21, 22, 22]
    assert "JobDispatched" not in {m.envelope.type for m in h.out.sent[sent:]}
    assert [m.key for m in groups] == [m.envelope.data["jobs"][0]["job_id"] for m in groups]
    jobs = h.dispatched()
    assert sorted(d.index for d in jobs) == list(range(67))  # the first two and 65
    assert {(d.batch_id, d.job_type, d.attempt, d.lease_s) for d in jobs} == {
        ("b1", "demo.sleep", 1, 10)
    }
    assert jobs[5].item == {"seconds": 0, "i": jobs[5].index}
    await run_to_end(h)
    assert h.last_snapshot()["type"] == "BatchCompleted"
    assert h.last_snapshot()["counts"]["completed"] == 70


async def test_jobs_that_run_long_go_one_a_message() -> None:
    """A group goes to one executor: jobs that run long are spread one by one, so that none
    waits there for a slot while another executor has one free."""
    h = Harness(dispatch_group=32)
    await h.submit("b1", 40)
    await h.capacity(1, grouped=True)
    await h.s.tick()
    [first] = h.dispatched()
    await h.complete(first, duration_ms=500)
    await h.capacity(20, grouped=True)
    await h.s.tick()
    assert h.out.of_type("JobsDispatched") == []
    assert len(h.out.of_type("JobDispatched")) == 21  # the first, the next, 19 more slots


async def test_one_executor_from_before_groups_gets_a_message_a_job_until_it_is_gone() -> None:
    h = Harness(dispatch_group=32, lease_s=600)
    await h.submit("b1", 20)
    beat = ExecutorHeartbeat(
        executor_id="e1",
        slots_total=4,
        slots_free=4,
        running=0,
        job_types=["demo.sleep"],
        sent_at=NOW,
        grouped_dispatches=True,
    )
    # with one from before, whose heartbeat does not say it takes groups
    await h.send(beat, beat.model_copy(update={"executor_id": "old", "grouped_dispatches": False}))
    await h.s.tick()
    assert len(h.out.of_type("JobDispatched")) == 8
    assert h.out.of_type("JobsDispatched") == []
    h.clock.t += 60  # the old one's heartbeats stopped (it was upgraded); e1's go on
    await h.capacity(4, grouped=True)
    await run_to_end(h)
    assert len(h.out.of_type("JobDispatched")) == 8
    assert sum(len(m.envelope.data["jobs"]) for m in h.out.of_type("JobsDispatched")) == 12
    assert h.last_snapshot()["counts"]["completed"] == 20


async def test_a_dispatch_group_of_one_sends_a_message_a_job() -> None:
    h = Harness(dispatch_group=1)
    await h.submit("b1", 5)
    await h.capacity(5, grouped=True)
    await h.s.tick()
    assert [m.key for m in h.out.of_type("JobDispatched")] == [f"b1.{i}" for i in range(5)]
    assert h.out.of_type("JobsDispatched") == []


async def test_nothing_is_dispatched_without_executors() -> None:
    h = Harness()
    await h.submit("b1", 3)
    await h.s.tick()
    assert h.dispatched() == []


async def test_max_concurrent_jobs_per_batch_holds() -> None:
    h = Harness()
    await h.started("b1", 20, slots=100, max_concurrent_jobs=3)
    await h.s.tick()
    assert len(h.dispatched()) == 3


async def test_a_job_type_rate_limit_holds_across_executors_and_batches() -> None:
    h = Harness(rate_limits={"demo.sleep": 5})
    await h.submit("b1", 40)
    await h.submit("b2", 40)
    await h.capacity(100)  # handling the heartbeat already dispatches the burst
    started: list[float] = [h.clock.t] * len(h.dispatched())
    for _ in range(30):  # three seconds in steps of 0.1 s
        before = len(h.dispatched())
        await h.s.tick()
        for d in h.dispatched():
            if d.job_id in h.s.batches[d.batch_id].in_flight:
                await h.complete(d)  # handling a result dispatches too: counted the same
        started += [h.clock.t] * (len(h.dispatched()) - before)
        h.clock.t += 0.1
    # A one-second burst, then five a second: 5 + 5 * 2.9 over the three seconds.
    assert len(started) == 19
    assert {d.batch_id for d in h.dispatched()} == {"b1", "b2"}


async def test_retryable_failure_is_retried_after_backoff_then_counted() -> None:
    h = Harness()
    await h.started(
        "b1", 1, slots=4, retry=RetryPolicy(max_attempts=2, backoff_initial_s=5, backoff_max_s=5)
    )
    (first,) = h.dispatched()
    await h.fail(first, retryable=True)
    assert "JobRetryScheduled" in h.types()
    await h.s.tick()
    assert len(h.dispatched()) == 1, "backoff not honoured"
    h.clock.t += 5.1
    await h.capacity(4)
    await h.s.tick()
    second = h.dispatched()[-1]
    assert second.attempt == 2
    assert second.job_id == first.job_id
    await h.fail(second, retryable=True)
    await h.s.tick()
    final = h.last_snapshot()
    assert (final["type"], final["reason"]) == ("BatchFailed", "no job completed")
    assert final["counts"]["failed"] == 1


@pytest.mark.parametrize(
    ("completing", "threshold", "ended"),
    [
        (1, 1.0, ("BatchCompleted", "completed_with_errors")),
        (0, 1.0, ("BatchFailed", "no job completed")),
        (1, 0.4, ("BatchFailed", "failure threshold")),
        (1, 0.5, ("BatchCompleted", "completed_with_errors")),
        (2, 1.0, ("BatchCompleted", "completed")),
    ],
)
async def test_how_a_batch_ends_follows_its_completed_and_failed_jobs(
    completing: int, threshold: float, ended: tuple[str, str]
) -> None:
    """Of two jobs, `completing` complete and the others fail for good: a batch with some
    work done and failures is completed with errors unless the threshold is passed; one
    with failures and no work done is failed at any threshold."""
    h = Harness()
    await h.started("b1", 2, slots=4, retry={"max_attempts": 1}, failure_threshold=threshold)
    for i, job in enumerate(h.dispatched()):
        if i < completing:
            await h.complete(job)
        else:
            await h.fail(job, retryable=False)
    await h.s.tick()
    final = h.last_snapshot()
    said = final.get("outcome") if final["type"] == "BatchCompleted" else final.get("reason")
    assert (final["type"], said) == ended
    assert final["counts"]["completed"] == completing


async def test_permanent_failure_is_not_retried() -> None:
    h = Harness()
    await h.started("b1", 1, slots=4)
    await h.fail(h.dispatched()[0], retryable=False)
    h.clock.t += 100
    await h.s.tick()
    assert len(h.dispatched()) == 1
    assert h.last_snapshot()["counts"]["failed"] == 1


async def test_stale_and_duplicate_results_are_ignored() -> None:
    h = Harness(lease_s=1)
    await h.started("b1", 1, slots=4)
    old = h.dispatched()[0]
    h.clock.t += 2  # lease expires: a new attempt is dispatched
    await h.capacity(4)
    await h.s.tick()
    new = h.dispatched()[-1]
    assert new.attempt == old.attempt + 1
    await h.complete(old)  # the late result of the replaced attempt
    assert h.s.batches["b1"].completed == 0
    await h.complete(new)
    await h.complete(new)  # a duplicate delivery
    await h.s.tick()
    assert h.last_snapshot()["counts"]["completed"] == 1


async def test_heartbeats_renew_the_lease_of_running_jobs() -> None:
    h = Harness(lease_s=1)
    await h.started("b1", 1, slots=4)
    d = h.dispatched()[0]
    await h.send(
        JobStarted(job_id=d.job_id, batch_id="b1", attempt=1, executor_id="e1", started_at=NOW)
    )
    for _ in range(5):
        h.clock.t += 0.8
        await h.capacity(4, running={d.job_id: 1})
        await h.s.tick()
    assert len(h.dispatched()) == 1


async def test_a_restarted_executors_lost_jobs_go_again_without_waiting_for_their_leases() -> None:
    h = Harness(lease_s=60)
    await h.submit("b1", 3)
    await h.capacity(3, process_started_at=NOW)
    await h.s.tick()
    first = h.dispatched()
    assert [d.attempt for d in first] == [1, 1, 1]
    # e1 runs two of them (its heartbeat lists them), the third it announced started
    await h.capacity(3, {first[0].job_id: 1, first[1].job_id: 1}, process_started_at=NOW)
    await h.send(
        JobStarted(
            job_id=first[2].job_id, batch_id="b1", attempt=1, executor_id="e1", started_at=NOW
        )
    )
    # the same process no longer listing a job proves nothing (its outcome may be on its way)
    await h.capacity(3, {first[0].job_id: 1}, process_started_at=NOW)
    h.clock.t += 1
    await h.s.tick()
    assert len(h.dispatched()) == 3
    # killed and started again: the new process holds none of them; the leases have 59 s left
    later = NOW + timedelta(seconds=5)
    await h.capacity(3, {}, process_started_at=later)
    h.clock.t += 1
    await h.s.tick()
    again = h.dispatched()[3:]
    assert sorted((d.job_id, d.attempt) for d in again) == sorted((d.job_id, 2) for d in first)
    # the late outcome of the dead process's attempt counts for nothing
    await h.complete(first[0])
    assert h.s.batches["b1"].completed == 0


async def test_a_heartbeat_from_before_v4_or_another_executor_releases_nothing() -> None:
    h = Harness(lease_s=60)
    await h.submit("b1", 2)
    await h.capacity(2, process_started_at=NOW)
    await h.s.tick()
    first = h.dispatched()
    await h.capacity(2, {d.job_id: 1 for d in first}, process_started_at=NOW)
    await h.capacity(2, {}, process_started_at=None)  # an old executor under the same id
    await h.capacity(2, {}, executor_id="e2", process_started_at=NOW + timedelta(seconds=9))
    h.clock.t += 1
    await h.s.tick()
    assert len(h.dispatched()) == 2


async def test_pause_stops_dispatch_and_resume_continues() -> None:
    h = Harness()
    await h.started("b1", 6, max_concurrent_jobs=2)
    await h.send(BatchPauseRequested(batch_id="b1", requested_by="u"))
    for d in h.dispatched():
        await h.complete(d)
    await h.s.tick()
    assert len(h.dispatched()) == 2
    assert h.s.batches["b1"].status == "paused"
    await h.send(BatchResumeRequested(batch_id="b1", requested_by="u"))
    await h.s.tick()
    assert len(h.dispatched()) == 4


async def test_a_pause_is_not_running_time_even_across_a_scheduler_takeover() -> None:
    h = Harness()
    await h.started("b1", 6, max_concurrent_jobs=2)
    h.clock.t += 10
    await h.send(BatchPauseRequested(batch_id="b1", requested_by="u"))
    paused = h.last_snapshot()
    assert paused["type"] == "BatchPaused"
    assert (paused["inactive_s"], paused["inactive_since"]) == (0, None)  # two jobs still run
    h.clock.t += 2
    for d in h.dispatched():
        await h.complete(d)
    await h.s.tick()  # now it stands still
    still = h.last_snapshot()
    assert still["type"] == "BatchProgress"
    assert still["inactive_since"] == datetime.fromtimestamp(h.clock.t, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    h2 = Harness(store=h.store)  # takes over while the batch is paused
    await h2.s.recover()
    h2.clock.t = h.clock.t + 30
    await h2.send(BatchResumeRequested(batch_id="b1", requested_by="u"))
    resumed = h2.last_snapshot()
    assert resumed["type"] == "BatchResumed"
    assert (resumed["inactive_s"], resumed["inactive_since"]) == (30, None)
    assert h2.s.batches["b1"].active_s(datetime.fromtimestamp(h2.clock.t, UTC)) == 12


async def test_the_rest_between_a_finish_and_a_retry_is_not_running_time() -> None:
    h = Harness()
    await h.started("b1", 2)
    first, second = h.dispatched()
    await h.complete(first)
    h.clock.t += 5
    await h.fail(second, retryable=False)
    await h.s.tick()
    assert h.last_snapshot()["type"] == "BatchCompleted"
    h.clock.t += 3600  # an hour later, the failed job is retried
    await h.send(BatchRetryRequested(batch_id="b1", requested_by="u"))
    await h.capacity(10)  # the executor's heartbeats of an hour ago are stale
    retrying = h.last_snapshot()
    assert retrying["type"] == "BatchRetrying"
    assert (retrying["inactive_s"], retrying["finished_at"]) == (3600, None)
    await run_to_end(h)
    assert h.last_snapshot()["inactive_s"] == 3600


async def test_running_jobs_progress_reports_reach_the_batch_snapshot() -> None:
    h = Harness()
    await h.started("b1", 3, max_concurrent_jobs=2)
    first, second = h.dispatched()
    await h.s.tick()
    assert h.last_snapshot()["running_done"] == 0  # no job reported a percent yet
    for d, percent in ((first, 50.0), (second, 25.0)):
        await h.send(
            JobProgress(
                job_id=d.job_id, batch_id="b1", attempt=1, executor_id="e1", percent=percent
            )
        )
    sent = len(h.out.sent)
    await h.s.tick()  # no job ended, yet the batch moved: a snapshot says so
    assert any(m.envelope.type == "BatchProgress" for m in h.out.sent[sent:])
    assert h.last_snapshot()["running_done"] == 0.75
    await h.complete(first)  # an ended job counts as ended, not by its last report
    await h.s.tick()
    snapshot = h.last_snapshot()
    assert (snapshot["counts"]["completed"], snapshot["running_done"]) == (1, 0.25)


async def test_snapshots_say_how_long_a_job_takes_on_average_across_a_takeover() -> None:
    h = Harness()
    await h.started("b1", 4, max_concurrent_jobs=2)
    first, second = h.dispatched()
    assert h.last_snapshot()["average_job_ms"] is None  # nothing ended yet
    await h.complete(first, duration_ms=10)
    await h.fail(second, retryable=True)  # 1 ms: a failed attempt ran too
    await h.s.tick()
    assert h.last_snapshot()["average_job_ms"] == 5.5
    h2 = Harness(store=h.store)
    await h2.s.recover()
    # how long its jobs take lately goes on too (short ones are dispatched in groups)
    assert h2.s.batches["b1"].job_ms == h.s.batches["b1"].job_ms == 8.2  # 10, then 1
    await h2.capacity(10)
    for d in h.dispatched()[2:]:  # the other two jobs, dispatched before the takeover
        await h2.complete(d)
    await run_to_end(h2)  # the retry
    assert h2.last_snapshot()["average_job_ms"] == 2.8  # (10 + 1 + 3 * 1 ms) / 5


async def test_snapshots_mark_the_window_of_the_recent_pace_after_30_s_of_running() -> None:
    h = Harness(lease_s=600)
    await h.started("b1", 100, max_concurrent_jobs=1)
    for _ in range(4):  # a job every 20 s
        h.clock.t += 20
        await h.capacity(10)  # the executor's heartbeat
        await h.complete(h.dispatched()[-1])
        await h.s.tick()
    snapshots = [m.envelope for m in h.out.sent if m.envelope.type.startswith("Batch")]
    windows = [(e.data["window_active_s"], e.data["window_done"]) for e in snapshots]
    # marks (active seconds, jobs done) at 0, at 40 (the first 30 s or more after it) and
    # at 80: the window begins at the one before the latest, 30 to 60 s behind
    assert list(dict.fromkeys(windows)) == [(None, None), (0.0, 0.0), (40.0, 2.0)]
    h2 = Harness(store=h.store, lease_s=600)  # a takeover keeps the marks
    await h2.s.recover()
    await h2.capacity(10)
    h2.clock.t = h.clock.t + 10
    await h2.complete(h.dispatched()[-1])
    await h2.s.tick()
    assert (h2.last_snapshot()["window_active_s"], h2.last_snapshot()["window_done"]) == (
        40.0,
        2.0,
    )


async def test_the_recent_pace_counts_the_jobs_that_ran_not_those_cancelled_one_by_one() -> None:
    h = Harness(lease_s=600)
    began = h.clock.t
    await h.started("b1", 100, max_concurrent_jobs=1)

    async def one_job_in_20_s() -> None:
        h.clock.t += 20
        await h.capacity(10)
        await h.complete(h.dispatched()[-1])
        await h.s.tick()

    for _ in range(4):  # marks at 0, 40 and 80 s (see the test above)
        await one_job_in_20_s()
    for i in range(5, 35):  # a person cancels 30 waiting jobs, one by one
        await h.send(JobCancelRequested(batch_id="b1", job_id=f"b1.{i}", requested_by="u"))
    for _ in range(3):  # dispatching passes them at 100 s: they end at once, without running
        await one_job_in_20_s()
    last = h.last_snapshot()
    counts = last["counts"]
    assert counts["cancelled"] == 30
    done = sum(counts[k] for k in ("completed", "failed", "skipped", "cancelled"))
    # a reader's pace (as the API's progress): jobs moved since the mark over the time since
    moved = done + last["running_done"] - last["window_done"]
    seconds = (h.clock.t - began) - last["window_active_s"]
    assert seconds >= 30
    assert moved / seconds == pytest.approx(1 / 20)  # not 30 jobs more in the same time


async def test_a_retry_measures_its_own_pace() -> None:
    h = Harness(lease_s=600)
    await h.started("b1", 3, max_concurrent_jobs=1)
    for _ in range(2):  # two jobs, 40 s each: a window from the start by the second
        h.clock.t += 40
        await h.capacity(10)
        await h.complete(h.dispatched()[-1])
        await h.s.tick()
    h.clock.t += 40
    await h.capacity(10)
    await h.fail(h.dispatched()[-1], retryable=False)
    await h.s.tick()
    assert h.last_snapshot()["window_active_s"] is not None
    await h.send(BatchRetryRequested(batch_id="b1", requested_by="u"))
    retrying = h.last_snapshot()
    assert retrying["type"] == "BatchRetrying"
    # the first run's marks would count the retried job's failure as done: a pace below 0
    assert (retrying["window_active_s"], retrying["window_done"]) == (None, None)


async def test_cancel_broadcasts_and_ends_cancelled_with_every_job_terminal() -> None:
    h = Harness()
    await h.started("b1", 10, max_concurrent_jobs=2)
    await h.send(BatchCancelRequested(batch_id="b1", requested_by="u"))
    assert "CancelBroadcast" in h.types()
    for d in h.dispatched():
        await h.send(
            JobFailed(
                job_id=d.job_id,
                batch_id="b1",
                attempt=1,
                executor_id="e1",
                started_at=NOW,
                finished_at=NOW,
                duration_ms=1,
                error_class="Cancelled",
                error_message="",
                retryable=False,
                cancelled=True,
            )
        )
    await h.s.tick()
    final = h.last_snapshot()
    assert final["type"] == "BatchCancelled"
    assert final["counts"]["cancelled"] == 10
    assert final["counts"]["pending"] == 0


async def test_cancel_ends_a_job_waiting_for_its_retry_with_a_job_cancelled_event() -> None:
    h = Harness()
    await h.submit("b1", 2, retry={"max_attempts": 3, "backoff_initial_s": 60})
    await h.capacity(10)
    await h.s.tick()
    first, second = h.dispatched()
    await h.fail(first, retryable=True)  # waits 60 s for attempt 2
    await h.complete(second)
    await h.send(BatchCancelRequested(batch_id="b1", requested_by="u"))
    await h.s.tick()
    cancelled = [m.envelope.data for m in h.out.of_type("JobCancelled")]
    assert [(c["job_id"], c["attempt"]) for c in cancelled] == [(first.job_id, 1)]
    final = h.last_snapshot()
    assert final["type"] == "BatchCancelled"
    assert (final["counts"]["completed"], final["counts"]["cancelled"]) == (1, 1)
    assert h.store.jobs[first.job_id]["status"] == "cancelled"


async def test_a_stagger_spaces_the_first_starts_then_lets_the_rest_run() -> None:
    h = Harness()
    await h.submit("b1", 10, stagger={"start_interval_ms": 500, "ramp_up_jobs": 3})
    await h.capacity(100)
    counts = []
    for _ in range(6):  # 0.0, 0.25 ... 1.25 s
        await h.s.tick()
        counts.append(len(h.dispatched()))
        h.clock.t += 0.25
    # One at 0 s, one at 0.5 s, one at 1.0 s; after three the ramp is over.
    assert counts == [1, 1, 2, 2, 10, 10]


async def test_a_batch_waits_for_its_dependency_and_starts_when_it_completes() -> None:
    h = Harness()
    await h.submit("first", 1)
    await h.started("second", 2, depends_on={"batches": ["first"]})
    assert {d.batch_id for d in h.dispatched()} == {"first"}
    waiting = [
        m.envelope.data for m in h.out.of_type("BatchProgress") if m.envelope.batch_id == "second"
    ]
    assert waiting[-1]["waiting_for"] == ["first"]
    await h.complete(h.dispatched()[0])
    for _ in range(3):
        h.clock.t += 1.0
        await h.s.tick()
    assert [d.batch_id for d in h.dispatched()].count("second") == 2


async def test_a_failed_dependency_cancels_the_batch_with_the_reason() -> None:
    h = Harness()
    await h.submit("first", 1, retry={"max_attempts": 1}, failure_threshold=0)
    await h.submit("second", 2, depends_on={"batches": ["first"], "on": "completed"})
    await h.submit("third", 1, depends_on={"batches": ["first"], "on": "finished"})
    await h.capacity(10)
    await h.s.tick()
    await h.fail(h.dispatched()[0], retryable=False)
    for _ in range(3):
        h.clock.t += 1.0
        await h.s.tick()
    ends = {
        m.envelope.batch_id: m.envelope for m in h.out.sent if m.envelope.type == "BatchCancelled"
    }
    assert ends["second"].data["reason"] == "dependency first ended failed"
    assert ends["second"].data["counts"]["cancelled"] == 2
    assert "third" not in ends
    assert [d.batch_id for d in h.dispatched()].count("third") == 1


async def test_an_unknown_dependency_cancels_the_batch_after_a_grace_period() -> None:
    h = Harness()
    await h.submit("lonely", 1, depends_on={"batches": ["nope"]})
    await h.s.tick()
    waiting = h.last_snapshot()
    assert (waiting["status"], waiting["waiting_for"]) == ("queued", ["nope"])
    h.clock.t += h.s.config.unknown_dependency_grace_s + 1
    await h.s.tick()
    final = h.last_snapshot()
    assert (final["type"], final["reason"]) == ("BatchCancelled", "dependency nope does not exist")


async def test_a_dependency_created_after_the_dependent_batch_is_waited_for() -> None:
    # BatchCreated of the dependency may sit in another partition, behind the dependent
    # batch's BatchSubmitted: the dependent batch waits instead of being cancelled.
    h = Harness()
    await h.started("second", 1, depends_on={"batches": ["first"]})
    h.clock.t += 1.0
    await h.submit("first", 1)
    await h.s.tick()
    assert [d.batch_id for d in h.dispatched()] == ["first"]
    await h.complete(h.dispatched()[0])
    for _ in range(3):
        h.clock.t += 1.0
        await h.s.tick()
    assert [d.batch_id for d in h.dispatched()] == ["first", "second"]


async def test_a_deadline_at_risk_raises_the_weight_and_a_missed_one_cancels_once() -> None:
    h = Harness()
    deadline = datetime.fromtimestamp(h.clock.t + 10, UTC)
    await h.submit(
        "late", 100, max_concurrent_jobs=1, deadline=deadline, on_deadline_missed="cancel"
    )
    await h.capacity(10)
    for _ in range(12):  # one job a second: 100 jobs need 100 s, 10 s are left
        await h.s.tick()
        for d in h.dispatched():
            if d.job_id in h.s.batches.get("late", _NoBatch).in_flight:
                await h.complete(d)
        h.clock.t += 1.0
    types = h.types()
    assert types.count("BatchDeadlineAtRisk") == 1
    assert types.count("BatchDeadlineMissed") == 1
    missed = h.out.of_type("BatchDeadlineMissed")[0].envelope.data
    assert missed["action"] == "cancel"
    assert h.last_snapshot()["type"] == "BatchCancelled"
    assert h.last_snapshot()["reason"] == "deadline missed"
    snapshots = [m.envelope.data for m in h.out.of_type("BatchProgress")]
    assert any(s["deadline_at_risk"] for s in snapshots)


async def test_stop_on_error_fails_the_batch() -> None:
    h = Harness()
    await h.started("b1", 10, max_concurrent_jobs=1, stop_on_error=True)
    await h.fail(h.dispatched()[0], retryable=False)
    await h.s.tick()
    final = h.last_snapshot()
    assert final["type"] == "BatchFailed"
    assert "failed" in final["reason"]
    assert final["counts"]["failed"] == 1
    assert final["counts"]["skipped"] == 9  # never started: skipped, not cancelled
    assert final["counts"]["cancelled"] == 0
    assert final["skipped_from"] == 1  # which ones: readers tell them from cancelled ones


async def test_a_stop_on_error_cancels_running_jobs_and_skips_the_rest_and_retry_runs_them() -> (
    None
):
    h = Harness()
    await h.started("b1", 10, max_concurrent_jobs=3, stop_on_error=True)
    first = h.dispatched()
    assert len(first) == 3
    await h.fail(first[0], retryable=False)
    await h.s.tick()
    assert h.s.batches["b1"].counts().skipped == 7
    for d in first[1:]:  # the running ones end cancelled
        await h.cancelled(d)
    await h.s.tick()
    final = h.last_snapshot()
    assert final["type"] == "BatchFailed"
    assert (final["counts"]["failed"], final["counts"]["cancelled"]) == (1, 2)
    assert final["counts"]["skipped"] == 7
    await h.send(BatchRetryRequested(batch_id="b1", requested_by="u"))
    retrying = h.last_snapshot()
    assert retrying["type"] == "BatchRetrying"
    assert (retrying["counts"]["skipped"], retrying["counts"]["pending"]) == (0, 7)
    assert retrying["counts"]["retrying"] == 1
    assert retrying["skipped_from"] is None
    await run_to_end(h)
    assert sorted(d.index for d in h.dispatched()[3:]) == [0, *range(3, 10)]
    final = h.last_snapshot()
    assert final["type"] == "BatchCompleted"
    assert (final["counts"]["completed"], final["counts"]["cancelled"]) == (8, 2)


async def test_jobs_their_job_type_skipped_stay_skipped_through_a_stop_and_a_retry() -> None:
    h = Harness()
    await h.started("b1", 6, execution="sequential", stop_on_error=True)
    await h.skip(h.dispatched()[0])
    await h.s.tick()
    await h.fail(h.dispatched()[1], retryable=False)  # stops the batch: 2 to 5 skipped
    await h.s.tick()
    final = h.last_snapshot()
    assert final["type"] == "BatchFailed"
    assert (final["counts"]["skipped"], final["counts"]["failed"]) == (5, 1)
    h2 = Harness(store=h.store)  # what a scheduler taking over reads back
    await h2.capacity(10)
    await h2.send(BatchRetryRequested(batch_id="b1", requested_by="u"))
    assert h2.last_snapshot()["counts"]["skipped"] == 1  # job 0's stays
    await run_to_end(h2)
    assert [d.index for d in h2.dispatched()] == [1, 2, 3, 4, 5]
    final = h2.last_snapshot()
    assert final["type"] == "BatchCompleted"
    assert (final["counts"]["completed"], final["counts"]["skipped"]) == (5, 1)


async def test_a_batch_whose_other_jobs_were_skipped_by_their_job_type_ends_with_errors() -> None:
    """Skipped by its job type, a job had nothing to do: that is work done, so one failed
    job among skipped ones is a batch `completed_with_errors`, not one none of whose jobs
    did anything."""
    h = Harness()
    await h.started("b1", 3)
    first, second, third = h.dispatched()
    await h.skip(first)
    await h.skip(second)
    await h.fail(third, retryable=False)
    await h.s.tick()
    assert h.last_snapshot()["outcome"] == "completed_with_errors"


async def test_a_sequential_batch_runs_one_job_at_a_time_in_order_retries_first() -> None:
    h = Harness()
    retry = RetryPolicy(max_attempts=2, backoff_initial_s=5, backoff_max_s=5)
    await h.submit("b1", 4, execution="sequential", max_concurrent_jobs=20, retry=retry)
    assert h.s.batches["b1"].config.max_concurrent_jobs == 1
    await h.capacity(10, grouped=True)
    await h.s.tick()
    assert [d.index for d in h.dispatched()] == [0]
    await h.complete(h.dispatched()[0])
    await h.s.tick()
    assert [d.index for d in h.dispatched()] == [0, 1]
    # its retry waits 2.5 to 5 s (jitter): meanwhile nothing else runs
    await h.fail(h.dispatched()[1], retryable=True)
    for _ in range(4):
        h.clock.t += 0.6
        await h.s.tick()
    assert [d.index for d in h.dispatched()] == [0, 1]
    h.clock.t += 2.6
    await h.s.tick()
    assert [(d.index, d.attempt) for d in h.dispatched()[2:]] == [(1, 2)]
    await h.complete(h.dispatched()[-1])
    await h.s.tick()
    await h.complete(h.dispatched()[-1])
    await h.s.tick()
    assert [d.index for d in h.dispatched()] == [0, 1, 1, 2, 3]


async def test_a_sequential_batch_stopped_by_an_error_skips_what_follows() -> None:
    h = Harness()
    await h.started("b1", 5, execution="sequential", stop_on_error=True)
    await h.complete(h.dispatched()[0])
    await h.s.tick()
    await h.fail(h.dispatched()[1], retryable=False)
    await h.s.tick()
    final = h.last_snapshot()
    assert final["type"] == "BatchFailed"
    assert (final["counts"]["completed"], final["counts"]["failed"]) == (1, 1)
    assert (final["counts"]["skipped"], final["counts"]["cancelled"]) == (3, 0)
    # a scheduler that takes over knows which jobs were skipped
    h2 = Harness(store=h.store)
    await h2.s.recover()
    await h2.capacity(10)
    job_id = h.dispatched()[1].job_id
    await h2.send(JobRetryRequested(batch_id="b1", job_id=job_id, requested_by="u"))
    await run_to_end(h2)
    assert [d.index for d in h2.dispatched()] == [1, 2, 3, 4]
    assert h2.last_snapshot()["type"] == "BatchCompleted"


async def test_a_job_awaiting_a_decision_stops_nothing_and_fails_nothing() -> None:
    h = Harness()
    await h.started("b1", 4, max_concurrent_jobs=1, stop_on_error=True, rollback_on_failure=True)
    await h.park(h.dispatched()[0])  # a conflict a person settles
    await run_to_end(h)  # the other three run: stop_on_error is for errors
    final = h.last_snapshot()
    assert final["type"] == "BatchCompleted"
    assert final["outcome"] == "completed_with_errors"  # not failed, so not rolled back
    assert (final["counts"]["completed"], final["counts"]["failed"]) == (3, 1)
    assert final["counts"]["awaiting_decision"] == 1  # readers show it apart from errors
    assert not h.out.of_type("RollbackRequested")
    # the decision runs the job again, also after a takeover
    h2 = Harness(store=h.store)
    await h2.s.recover()
    await h2.capacity(10)
    job_id = h.dispatched()[0].job_id
    await h2.send(JobRetryRequested(batch_id="b1", job_id=job_id, requested_by="u"))
    await h2.s.tick()
    await h2.park(h2.dispatched()[-1])  # still undecided (another conflict came up)
    await h2.s.tick()
    assert h2.last_snapshot()["outcome"] == "completed_with_errors"
    await h2.send(JobRetryRequested(batch_id="b1", job_id=job_id, requested_by="u"))
    await run_to_end(h2)
    assert h2.last_snapshot()["outcome"] == "completed"
    assert h2.last_snapshot()["counts"]["awaiting_decision"] == 0


async def test_a_batch_whose_only_job_awaits_a_decision_ends_with_errors_not_failed() -> None:
    h = Harness()
    await h.started("b1", 1, failure_threshold=0)
    await h.park(h.dispatched()[0])
    await h.s.tick()
    assert h.last_snapshot()["outcome"] == "completed_with_errors"
    h2 = Harness()  # a real error with it fails the batch, by the threshold
    await h2.started("b1", 2, failure_threshold=0)
    first, second = h2.dispatched()
    await h2.park(first)
    await h2.fail(second, retryable=False)
    await h2.s.tick()
    assert (h2.last_snapshot()["type"], h2.last_snapshot()["reason"]) == (
        "BatchFailed",
        "failure threshold",
    )


@pytest.mark.parametrize("completing", [0, 1])
async def test_a_failed_batch_is_rolled_back_on_failure_only_if_a_job_completed(
    completing: int,
) -> None:
    """With nothing completed there is nothing to undo: a rollback would only end the
    failed batch `rollback_failed`."""
    h = Harness()
    await h.submit("b1", 3, max_concurrent_jobs=1, stop_on_error=True, rollback_on_failure=True)
    await h.capacity(10)
    for _ in range(completing):
        await h.s.tick()
        await h.complete(h.dispatched()[-1])
    await h.s.tick()
    await h.fail(h.dispatched()[-1], retryable=False)
    await h.s.tick()
    assert h.last_snapshot()["type"] == "BatchFailed"
    requested = h.out.of_type("RollbackRequested")
    assert len(requested) == completing


async def test_a_restarted_scheduler_resumes_from_the_store() -> None:
    h = Harness()
    await h.started("b1", 6, max_concurrent_jobs=2)
    await h.complete(h.dispatched()[0])
    await h.s.tick()
    # a new scheduler over the same store
    h2 = Harness(store=h.store)
    await h2.s.recover()
    b = h2.s.batches["b1"]
    assert b.completed == 1
    assert len(b.in_flight) == 2
    assert b.next_index == 3


async def test_a_job_claimed_but_never_recorded_is_dispatched_by_the_next_scheduler() -> None:
    """A flush saves the batch (its `next_index`) and its jobs' states at once: killed
    between the two, the scheduler leaves a job claimed with no state, never dispatched."""
    h = Harness()
    await h.started("b1", 6, max_concurrent_jobs=2)
    first, lost = h.dispatched()
    del h.store.jobs[lost.job_id]  # its state never reached the store; nor its dispatch
    h2 = Harness(store=h.store)
    await h2.s.recover()
    assert [(r.index, r.attempt) for r in h2.s.batches["b1"].retries] == [(lost.index, 1)]
    await h2.capacity(10)
    await h2.complete(first)  # the one that did run reports to the new scheduler
    await run_to_end(h2)
    assert sorted(d.index for d in h2.dispatched()) == [1, 2, 3, 4, 5]
    final = h2.last_snapshot()
    assert (final["type"], final["counts"]["completed"]) == ("BatchCompleted", 6)


async def test_a_job_never_recorded_of_a_batch_being_cancelled_ends_cancelled() -> None:
    h = Harness()
    await h.started("b1", 6, max_concurrent_jobs=2)
    running, lost = h.dispatched()
    await h.send(BatchCancelRequested(batch_id="b1", requested_by="u"))
    del h.store.jobs[lost.job_id]  # claimed, but neither its state nor its dispatch went out
    h2 = Harness(store=h.store)
    await h2.s.recover()
    assert h2.s.batches["b1"].retries == []  # not dispatched: the batch is being stopped
    await h2.capacity(10)
    await h2.cancelled(running)  # the executor stopped the one that ran
    await h2.s.tick()
    final = h2.last_snapshot()
    assert final["type"] == "BatchCancelled"
    assert (final["counts"]["total"], final["counts"]["cancelled"]) == (6, 6)  # none lost
    assert h2.dispatched() == []
    h3 = Harness(store=h2.store)  # and it is counted once, whoever reads the store next
    await h3.s.recover()
    assert "b1" not in h3.s.batches


async def test_a_job_cancelled_before_its_dispatch_stays_cancelled_after_a_takeover() -> None:
    h = Harness()
    await h.started("b1", 5, max_concurrent_jobs=1)
    await h.send(JobCancelRequested(batch_id="b1", job_id="b1.3", requested_by="u"))
    h2 = Harness(store=h.store)
    await h2.s.recover()
    assert h2.s.batches["b1"].next_index == 1  # the cancel's record did not move it
    await h2.capacity(10)
    await h2.complete(h.dispatched()[0])
    await run_to_end(h2)
    assert sorted(d.index for d in h2.dispatched()) == [1, 2, 4]
    final = h2.last_snapshot()
    assert (final["counts"]["completed"], final["counts"]["cancelled"]) == (4, 1)


async def test_a_patched_priority_and_deadline_reach_the_running_batch() -> None:
    h = Harness()
    await h.started("b1", 4, max_concurrent_jobs=1)
    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    await h.send(BatchUpdated(batch_id="b1", priority="critical", deadline=deadline))
    assert h.s.batches["b1"].priority_level == 10
    assert h.s.batches["b1"].config.deadline == deadline
    assert h.last_snapshot()["priority_level"] == 10  # the views learn it too
    await h.send(BatchUpdated(batch_id="b1", deadline_cleared=True))
    assert h.s.batches["b1"].config.deadline is None
    assert h.s.batches["b1"].priority_level == 10  # absent fields stay
    await h.send(BatchUpdated(batch_id="nobody", priority="low"))  # unknown: ignored


async def test_a_patched_concurrency_reaches_the_running_batch_and_a_takeover() -> None:
    h = Harness()
    await h.started("b1", 12, max_concurrent_jobs=1)
    assert len(h.dispatched()) == 1
    await h.send(BatchUpdated(batch_id="b1", max_concurrent_jobs=4))
    await h.s.tick()
    assert len(h.dispatched()) == 4  # three more at the next round
    await h.send(BatchUpdated(batch_id="b1", max_concurrent_jobs=2))  # lowered: none stopped
    await h.s.tick()
    assert len(h.s.batches["b1"].in_flight) == 4
    for d in h.dispatched():
        await h.complete(d)
    await h.s.tick()
    assert len(h.s.batches["b1"].in_flight) == 2
    h2 = Harness(store=h.store)  # the new concurrency was stored with the batch
    await h2.s.recover()
    assert h2.s.batches["b1"].config.max_concurrent_jobs == 2


async def _finished_batch(h: Harness) -> None:
    await h.submit("b1", 3)
    await h.capacity(4)
    await run_to_end(h)
    assert h.store.batches["b1"]["status"] == "completed"


async def test_a_rollback_moves_a_finished_batch_through_rolling_back_to_rolled_back() -> None:
    h = Harness()
    await _finished_batch(h)
    await h.send(RollbackStarted(batch_id="b1", rollback_id="r1", planned_jobs=3))
    assert h.last_snapshot()["type"] == "BatchRollingBack"
    assert h.last_snapshot()["status"] == "rolling_back"
    assert h.store.batches["b1"]["status"] == "rolling_back"
    await h.send(RollbackCompleted(batch_id="b1", rollback_id="r1", compensated_jobs=3))
    final = h.last_snapshot()
    assert (final["type"], final["status"], final["compensated_jobs"]) == (
        "BatchRolledBack",
        "rolled_back",
        3,
    )
    assert final["counts"]["completed"] == 3
    assert h.store.batches["b1"]["status"] == "rolled_back"
    sent = len(h.out.sent)
    # a replay of the same rollback's events changes nothing
    await h.send(
        RollbackStarted(batch_id="b1", rollback_id="r1", planned_jobs=3),
        RollbackCompleted(batch_id="b1", rollback_id="r1", compensated_jobs=3),
    )
    assert len(h.out.sent) == sent


async def test_a_failed_rollback_ends_rollback_failed_and_may_be_tried_again() -> None:
    h = Harness()
    await _finished_batch(h)
    await h.send(
        RollbackStarted(batch_id="b1", rollback_id="r1"),
        RollbackFailed(batch_id="b1", rollback_id="r1", reason="b1.2: checksum mismatch"),
    )
    assert h.last_snapshot()["status"] == "rollback_failed"
    assert h.last_snapshot()["reason"] == "b1.2: checksum mismatch"
    await h.send(
        RollbackStarted(batch_id="b1", rollback_id="r2"),
        RollbackCompleted(batch_id="b1", rollback_id="r2", compensated_jobs=3),
    )
    assert h.store.batches["b1"]["status"] == "rolled_back"


async def test_a_finished_batch_is_rolling_back_as_soon_as_the_rollback_is_requested() -> None:
    """Not only once the rollback service has planned it (reading every backup can take
    seconds); its start and end, and a redelivered request, then find it rolling back
    under the id derived from the request."""
    h = Harness()
    await _finished_batch(h)
    request = envelope_for(RollbackRequested(batch_id="b1", requested_by="u"), producer="api")
    rollback_id = rollback_id_of("b1", request.event_id)
    await h.s.handle([(request, RollbackRequested(batch_id="b1", requested_by="u"))])
    shown = h.last_snapshot()
    assert (shown["type"], shown["status"], shown["rollback_id"]) == (
        "BatchRollingBack",
        "rolling_back",
        rollback_id,
    )
    sent = len(h.out.sent)
    await h.s.handle([(request, RollbackRequested(batch_id="b1", requested_by="u"))])
    await h.send(RollbackStarted(batch_id="b1", rollback_id=rollback_id, planned_jobs=3))
    assert len(h.out.sent) == sent, "a repeat of the request or its start changed something"
    await h.send(RollbackCompleted(batch_id="b1", rollback_id=rollback_id, compensated_jobs=3))
    assert h.last_snapshot()["type"] == "BatchRolledBack"
    assert h.store.batches["b1"]["status"] == "rolled_back"


async def test_a_refused_rollback_request_ends_the_batch_rollback_failed() -> None:
    h = Harness()
    await _finished_batch(h)
    request = envelope_for(RollbackRequested(batch_id="b1", requested_by="u"), producer="api")
    await h.s.handle([(request, RollbackRequested(batch_id="b1", requested_by="u"))])
    refused = RollbackFailed(
        batch_id="b1", rollback_id=rollback_id_of("b1", request.event_id), reason="corrupt"
    )
    await h.send(refused)
    final = h.last_snapshot()
    assert (final["status"], final["reason"]) == ("rollback_failed", "corrupt")


async def test_dry_runs_and_the_ends_of_other_rollbacks_leave_the_status_alone() -> None:
    h = Harness()
    await _finished_batch(h)
    sent = len(h.out.sent)
    await h.send(
        RollbackRequested(batch_id="b1", requested_by="u", dry_run=True),
        RollbackStarted(batch_id="b1", rollback_id="dry", dry_run=True),
        RollbackCompleted(batch_id="b1", rollback_id="dry", dry_run=True),
        RollbackFailed(batch_id="b1", rollback_id="refused", reason="no backups"),
    )
    assert len(h.out.sent) == sent
    assert h.store.batches["b1"]["status"] == "completed"


async def test_a_submission_is_stored_queued_and_dispatched_without_reading_its_items_back() -> (
    None
):
    h = Harness()
    reads: list[tuple[str, int]] = []
    read_back = h.store.chunk_items

    async def counting(batch_id: str, chunk: int) -> list[dict[str, Any]]:
        reads.append((batch_id, chunk))
        return await read_back(batch_id, chunk)

    h.store.chunk_items = counting  # type: ignore[method-assign]
    await h.submit("b1", 5)
    assert (h.store.batches["b1"]["status"], h.store.batches["b1"]["total"]) == ("queued", 5)
    await h.capacity(2)
    await h.s.tick()
    assert [d.item["i"] for d in h.dispatched()] == [0, 1]
    assert reads == []  # the items just stored are dispatched from memory
    # a restarted scheduler has no such memory: it reads the chunk it dispatches from
    h2 = Harness(store=h.store)
    await h2.s.recover()
    await h2.capacity(4)
    await h2.s.tick()
    assert sorted(d.item["i"] for d in h2.dispatched()) == [2, 3]  # 0 and 1 still hold slots
    assert sorted(set(reads)) == [("b1", 0), ("b1", 1)]


async def test_process_isolated_jobs_are_dispatched_only_into_process_slots() -> None:
    h = Harness()
    await h.submit("iso", 10, job_type="demo.allocate")
    await h.submit("inl", 10)
    await h.send(
        ExecutorHeartbeat(
            executor_id="e1",
            slots_total=8,
            slots_free=8,
            running=0,
            job_types=["demo.allocate", "demo.sleep"],
            sent_at=NOW,
            process_slots_total=2,
            process_job_types=["demo.allocate"],
        )
    )
    await h.s.tick()

    def sent() -> Counter[str]:
        return Counter(d.batch_id for d in h.dispatched())

    # the inline batch takes the slots the isolated one cannot use
    assert sent() == {"iso": 2, "inl": 6}
    await h.complete(next(d for d in h.dispatched() if d.batch_id == "iso"))
    await h.s.tick()
    assert sent() == {"iso": 3, "inl": 6}, "one process slot came free, one isolated job went"


async def test_an_executor_that_announces_no_process_slots_is_all_slots() -> None:
    h = Harness()
    await h.submit("iso", 10, job_type="demo.allocate")
    await h.capacity(4)  # an executor of before process slots: its heartbeat lacks them
    await h.s.tick()
    assert len(h.dispatched()) == 4


async def test_executors_without_process_job_types_add_no_process_slots() -> None:
    h = Harness()
    await h.submit("iso", 10, job_type="demo.allocate")
    for executor_id, hosted in (("e1", ["demo.allocate", "demo.sleep"]), ("e2", ["demo.sleep"])):
        await h.send(
            ExecutorHeartbeat(
                executor_id=executor_id,
                slots_total=8,
                slots_free=8,
                running=0,
                job_types=hosted,
                sent_at=NOW,
                process_slots_total=2,
                process_job_types=[t for t in hosted if t == "demo.allocate"],
            )
        )
    await h.s.tick()
    assert len(h.dispatched()) == 2, "only e1 runs demo.allocate in worker processes"
