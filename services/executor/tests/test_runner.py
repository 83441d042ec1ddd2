"""The executor's runner with a recording publisher: outcomes, timeouts, cancel, slots."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from contracts.codec import envelope_for
from contracts.events import (
    CancelBroadcast,
    DispatchedJob,
    Event,
    JobDispatched,
    JobsDispatched,
)
from contracts.topics import Topics
from executor.handlers.runner import Executor
from jobkit import AwaitingDecision, JobContext, JobType, PermanentError
from jobtypes.demo import DemoSleep
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.unit


class Echo(BaseModel):
    value: int = 0


class Boom(JobType):
    name = "test.boom"
    Input = Echo

    async def run(self, item: Any, ctx: JobContext) -> dict[str, Any]:
        if item.value == 1:
            raise PermanentError("bad input", error_class="BadInput")
        if item.value == 3:
            raise AwaitingDecision("1 conflict awaits a decision")
        raise ValueError("unexpected")


class Slow(JobType):
    name = "test.slow"
    Input = Echo
    started: ClassVar[int] = 0

    async def run(self, item: Any, ctx: JobContext) -> dict[str, Any]:
        Slow.started += 1
        await ctx.report_progress(10, "working")
        await asyncio.sleep(30)
        return {}


def dispatch(job_type: str, item: dict[str, Any], **kw: Any) -> JobDispatched:
    fields: dict[str, Any] = {
        "job_id": "b1.0",
        "batch_id": "b1",
        "index": 0,
        "job_type": job_type,
        "attempt": 1,
        "item": item,
        "timeout_s": 5,
        "lease_s": 30,
        "dispatched_at": datetime.now(UTC),
    }
    return JobDispatched(**(fields | kw))


def make(slots: int = 2) -> tuple[Executor, RecordingPublisher]:
    out = RecordingPublisher()
    ex = Executor(
        "e1",
        slots,
        {"demo.sleep": DemoSleep(), "test.boom": Boom(), "test.slow": Slow()},
        out,
        Topics(),
    )
    return ex, out


async def run(ex: Executor, *events: Event) -> None:
    await ex.accept([(envelope_for(e, producer="t"), e) for e in events])


async def drain(ex: Executor) -> None:
    for _ in range(200):
        if not ex.running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("jobs still running")


def outcomes(out: RecordingPublisher) -> list[str]:
    return [t for t in types(out) if t in ("JobCompleted", "JobFailed")]


def types(out: RecordingPublisher) -> list[str]:
    return [m.envelope.type for m in out.sent]


async def test_a_job_completes_with_its_output() -> None:
    ex, out = make()
    await run(ex, dispatch("demo.sleep", {"seconds": 0}))
    await drain(ex)
    await asyncio.sleep(ex.start_notice_s * 2)
    # ended within the start notice: its outcome says when it started; no JobStarted
    assert types(out) == ["JobCompleted"]
    completed = out.sent[0]
    assert completed.envelope.data["output"] == {"slept_s": 0.0, "attempt": 1}
    assert completed.envelope.data["started_at"] <= completed.envelope.data["finished_at"]
    assert completed.key == "b1"


async def test_a_job_still_running_after_the_notice_is_reported_started_first() -> None:
    ex, out = make()
    await run(ex, dispatch("demo.sleep", {"seconds": 0.2}))
    assert out.sent == []  # the dispatch is acknowledged: the job runs
    await asyncio.sleep(ex.start_notice_s * 2)
    assert types(out) == ["JobStarted"]
    assert "b1.0" in ex.running
    await drain(ex)
    assert types(out) == ["JobStarted", "JobCompleted"]
    started, completed = (m.envelope.data for m in out.sent)
    assert started["started_at"] == completed["started_at"]


async def test_a_job_that_ended_is_not_reported_started_while_its_outcome_is_acked() -> None:
    class SlowAcks(RecordingPublisher):
        """A broker under load: each publish is acknowledged after 5 start notices."""

        async def publish(self, messages: Any) -> None:
            await asyncio.sleep(ex.start_notice_s * 5)
            await super().publish(messages)

    ex = Executor("e1", 2, {"demo.sleep": DemoSleep()}, SlowAcks(), Topics())
    out = ex.publisher
    assert isinstance(out, RecordingPublisher)
    await run(ex, dispatch("demo.sleep", {"seconds": 0}))
    await drain(ex)
    await asyncio.sleep(ex.start_notice_s * 2)
    assert types(out) == ["JobCompleted"]


async def test_without_a_start_notice_a_job_is_reported_started_before_it_runs() -> None:
    class Down(RecordingPublisher):
        async def publish(self, messages: Any) -> None:
            raise ConnectionRefusedError("Kafka is away")

    ex, out = make()
    ex.start_notice_s = 0
    await run(ex, dispatch("demo.sleep", {"seconds": 0}))
    await drain(ex)
    assert types(out) == ["JobStarted", "JobCompleted"]
    down = Executor("e1", 2, {"demo.sleep": DemoSleep()}, Down(), Topics(), start_notice_s=0)
    with pytest.raises(ConnectionRefusedError):  # the dispatch is not acknowledged
        await run(down, dispatch("demo.sleep", {"seconds": 0}))
    assert down.running == {}  # delivered again, it is taken again


@pytest.mark.parametrize(
    ("job_type", "item", "error_class", "retryable"),
    [
        ("demo.sleep", {"fail_first_attempts": 1}, "DemoFailure", True),
        ("demo.sleep", {"fail_first_attempts": 1, "fail_with": "permanent"}, "DemoFailure", False),
        ("test.boom", {"value": 1}, "BadInput", False),
        ("test.boom", {"value": 2}, "ValueError", False),
        ("test.boom", {"value": 3}, "AwaitingDecision", False),
        ("demo.sleep", {"fail_first_attempts": 1, "fail_with": "crash"}, "RuntimeError", False),
        ("demo.sleep", {"seconds": "soon"}, "InvalidInput", False),
        ("no.such.type", {}, "UnknownJobType", False),
    ],
)
async def test_failures_are_classified(
    job_type: str, item: dict[str, Any], error_class: str, retryable: bool
) -> None:
    ex, out = make()
    await run(ex, dispatch(job_type, item))
    await drain(ex)
    failed = out.of_type("JobFailed")[0].envelope.data
    assert failed["error_class"] == error_class
    assert failed["retryable"] is retryable
    assert failed["awaiting_decision"] is (error_class == "AwaitingDecision")
    # only an exception the job did not mean to raise says where it was raised
    if error_class in ("ValueError", "RuntimeError"):
        assert failed["traceback"].startswith("Traceback (most recent call last):")
        assert failed["traceback"].endswith(f"{error_class}: {failed['error_message']}")
    else:
        assert failed["traceback"] is None


async def test_timeout_is_a_retryable_failure() -> None:
    ex, out = make()
    await run(ex, dispatch("demo.sleep", {"seconds": 5}, timeout_s=0.05))
    await drain(ex)
    failed = out.of_type("JobFailed")[0].envelope.data
    assert failed["error_class"] == "JobTimeout"
    assert failed["retryable"] is True


async def test_cancel_broadcast_stops_the_running_job_cooperatively() -> None:
    ex, out = make()
    await run(ex, dispatch("test.slow", {}))
    await asyncio.sleep(0.05)
    assert "JobProgress" in types(out)
    cancel = CancelBroadcast(batch_id="b1")
    await ex.control([(envelope_for(cancel, producer="s"), cancel)])
    await drain(ex)
    failed = out.of_type("JobFailed")[0].envelope.data
    assert failed["cancelled"] is True


async def test_slots_bound_concurrency_and_heartbeat_reports_them() -> None:
    ex, _ = make(slots=2)
    Slow.started = 0
    jobs = [dispatch("test.slow", {}, job_id=f"b1.{i}", index=i) for i in range(3)]
    accepting = asyncio.create_task(run(ex, *jobs))
    await asyncio.sleep(0.1)
    assert Slow.started == 2
    assert not accepting.done(), "a third job started without a free slot"
    beat = ex.heartbeat().envelope.data
    assert beat["slots_free"] == 0
    assert beat["running"] == 2
    # The job waiting for a slot is held here: the heartbeat renews its lease too.
    assert beat["running_jobs"] == {"b1.0": 1, "b1.1": 1, "b1.2": 1}
    await ex.shutdown()
    accepting.cancel()


def group(*jobs: JobDispatched) -> JobsDispatched:
    """`jobs` (of one batch and job type) as the scheduler groups them."""
    first = jobs[0]
    return JobsDispatched(
        batch_id=first.batch_id,
        job_type=first.job_type,
        jobs=[
            DispatchedJob(job_id=j.job_id, index=j.index, attempt=j.attempt, item=j.item)
            for j in jobs
        ],
        params=first.params,
        timeout_s=first.timeout_s,
        lease_s=first.lease_s,
        dispatched_at=first.dispatched_at,
    )


async def test_every_job_of_a_grouped_dispatch_runs_within_the_slots() -> None:
    ex, out = make(slots=2)
    assert ex.heartbeat().envelope.data["grouped_dispatches"] is True
    jobs = [
        dispatch("demo.sleep", {"seconds": 0.05, "fail_first_attempts": i % 2}, job_id=f"b1.{i}")
        for i in range(5)
    ]
    accepting = asyncio.create_task(run(ex, group(*jobs)))
    await asyncio.sleep(0.01)
    assert len(ex.running) == 2  # two slots: the other three wait for one
    assert set(ex.heartbeat().envelope.data["running_jobs"]) == {j.job_id for j in jobs}
    await accepting
    await drain(ex)
    outcomes = {m.envelope.data["job_id"]: m.envelope.type for m in out.sent}
    assert outcomes == {f"b1.{i}": "JobFailed" if i % 2 else "JobCompleted" for i in range(5)}


async def test_a_group_runs_no_job_twice_nor_one_near_its_lease_end() -> None:
    ex, out = make()
    Slow.started = 0
    slow = dispatch("test.slow", {})
    await run(ex, slow)
    await run(ex, group(slow))  # the same attempt again, as a group's
    late = dispatch("demo.sleep", {}, job_id="b1.1", dispatched_at=datetime(2020, 1, 1, tzinfo=UTC))
    await run(ex, group(late))
    await asyncio.sleep(ex.start_notice_s * 2)
    assert Slow.started == 1
    assert {m.envelope.data["job_id"] for m in out.sent} == {"b1.0"}  # b1.1 not run
    assert types(out).count("JobStarted") == 1
    await ex.shutdown()


async def test_duplicate_and_stale_dispatches_are_skipped() -> None:
    ex, out = make()
    stale = dispatch("demo.sleep", {}, dispatched_at=datetime(2020, 1, 1, tzinfo=UTC))
    await run(ex, stale)
    assert out.sent == []
    slow = dispatch("test.slow", {})
    await run(ex, slow, slow)
    await asyncio.sleep(ex.start_notice_s * 2)
    assert types(out).count("JobStarted") == 1
    await ex.shutdown()


async def test_a_dispatch_near_its_lease_end_is_left_to_expire() -> None:
    """A redelivered dispatch whose lease is almost over is not run: the scheduler is about
    to give the job to another executor as its next attempt, and both would run at once."""
    ex, out = make()
    now = datetime.now(UTC).timestamp()
    late = dispatch("demo.sleep", {"seconds": 0}, lease_s=15)
    ex.clock = lambda: now + 13  # 2 s of the lease left: less than the margin
    await run(ex, late)
    assert out.sent == []
    ex.clock = lambda: now + 11  # 4 s left: taken
    await run(ex, late)
    await drain(ex)
    assert types(out) == ["JobCompleted"]


class Fenced(JobType):
    """A process-isolated type whose runs are counted, not forked (the isolation is faked)."""

    name = "test.fenced"
    Input = Echo
    isolation = "process"


class CountingIsolation:
    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def run(
        self, request: Any, limits: Any, report: Any, warnings: Any = None, resources: Any = None
    ) -> dict[str, Any]:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.05)
        finally:
            self.now -= 1
        return {}


async def test_process_slots_bound_isolated_jobs_while_inline_jobs_keep_running() -> None:
    out = RecordingPublisher()
    isolation = CountingIsolation()
    ex = Executor(
        "e1",
        4,
        {"test.fenced": Fenced(), "demo.sleep": DemoSleep()},
        out,
        Topics(),
        isolation=isolation,  # type: ignore[arg-type]
        process_slots=1,
    )
    fenced = [dispatch("test.fenced", {}, job_id=f"b1.{i}", index=i) for i in range(3)]
    inline = [dispatch("demo.sleep", {"seconds": 0}, job_id=f"b1.{i}", index=i) for i in (3, 4)]
    await run(ex, fenced[0], *inline, *fenced[1:])
    await drain(ex)
    assert isolation.most == 1
    assert types(out).count("JobCompleted") == 5
    # the inline jobs did not wait behind the isolated ones for the one process slot
    completed = [m.envelope.data["job_id"] for m in out.of_type("JobCompleted")]
    assert completed.index("b1.3") < completed.index("b1.1")
    beat = ex.heartbeat().envelope.data
    assert (beat["slots_total"], beat["slots_free"]) == (4, 4)
    # the scheduler learns the pool, so it sends no more isolated jobs than it can run
    assert (beat["process_slots_total"], beat["process_job_types"]) == (1, ["test.fenced"])
    await ex.shutdown()


async def test_jobs_cancelled_while_waiting_for_a_slot_never_run() -> None:
    ex, out = make(slots=1)
    Slow.started = 0
    jobs = [
        dispatch("test.slow", {}, job_id="b1.0", index=0),
        dispatch("test.slow", {}, job_id="b1.1", index=1),
        dispatch("demo.sleep", {"seconds": 0}, job_id="b1.2", index=2),
    ]
    accepting = asyncio.create_task(run(ex, *jobs))
    await asyncio.sleep(0.1)
    assert Slow.started == 1
    cancel = CancelBroadcast(batch_id="b1", job_ids=["b1.0", "b1.1"])
    await ex.control([(envelope_for(cancel, producer="s"), cancel)])
    await asyncio.wait_for(accepting, 2)
    await drain(ex)
    assert Slow.started == 1, "a job named by the cancel ran after it"
    outcomes = {
        m.envelope.data["job_id"]: m.envelope
        for m in out.sent
        if m.envelope.type in ("JobCompleted", "JobFailed")
    }
    assert outcomes["b1.0"].data["cancelled"] is True
    assert outcomes["b1.1"].data["cancelled"] is True
    assert outcomes["b1.2"].type == "JobCompleted"
    assert ex.cancelled_waiting == set()


async def test_draining_lets_running_jobs_end_and_offers_no_slots() -> None:
    ex, out = make(slots=2)
    await run(ex, dispatch("demo.sleep", {"seconds": 0.3}))
    draining = asyncio.create_task(ex.drain(5))
    await asyncio.sleep(0.05)
    beat = ex.heartbeat().envelope.data
    assert (beat["slots_total"], beat["slots_free"], beat["process_slots_total"]) == (0, 0, 0)
    assert beat["running_jobs"] == {"b1.0": 1}, "its lease is still renewed while it ends"
    await asyncio.wait_for(draining, 2)
    assert not ex.running
    assert types(out) == ["JobStarted", "JobCompleted"]


async def test_draining_gives_up_at_once_a_job_whose_dispatch_was_not_acknowledged() -> None:
    ex, out = make(slots=1)
    Slow.started = 0
    # The first job runs; the second waits for its slot, so the `accept` has not returned and
    # the batch's offsets are not committed. The subscriber's stop cancels that `accept`:
    # Kafka will deliver both dispatches to another executor.
    jobs = [dispatch("test.slow", {}, job_id=f"b1.{i}", index=i) for i in range(2)]
    accepting = asyncio.create_task(run(ex, *jobs))
    await asyncio.sleep(0.1)
    assert Slow.started == 1
    accepting.cancel()
    await asyncio.gather(accepting, return_exceptions=True)
    await asyncio.wait_for(ex.drain(30), 2)
    assert not ex.running
    assert not ex.waiting
    assert outcomes(out) == [], "no outcome: it runs elsewhere"


async def test_a_job_still_running_when_the_drain_ends_is_left_to_its_lease() -> None:
    ex, out = make(slots=2)
    await run(ex, dispatch("test.slow", {}))
    await asyncio.wait_for(ex.drain(0.2), 2)
    assert "b1.0" in ex.running, "a handed-over job is not given up by the drain"
    await ex.shutdown()
    assert not ex.running
    assert outcomes(out) == [], "no outcome: its lease brings it back"


async def test_demo_sleep_reports_its_steps_as_progress() -> None:
    ex, out = make()
    await run(ex, dispatch("demo.sleep", {"seconds": 0.1, "progress_steps": 2}))
    await drain(ex)
    reports = [
        (m.envelope.data["percent"], m.envelope.data["message"]) for m in out.of_type("JobProgress")
    ]
    assert reports == [(50, "step 1 of 2"), (100, "step 2 of 2")]
    assert types(out)[-1] == "JobCompleted"


async def test_a_dispatch_delivered_again_while_its_job_runs_hands_the_job_over() -> None:
    ex, _ = make(slots=1)
    jobs = [dispatch("test.slow", {}, job_id=f"b1.{i}", index=i) for i in range(2)]
    accepting = asyncio.create_task(run(ex, *jobs))  # b1.1 waits: b1.0 is not acknowledged
    await asyncio.sleep(0.1)
    accepting.cancel()
    await asyncio.gather(accepting, return_exceptions=True)
    assert not ex.running["b1.0"].handed
    await run(ex, dispatch("test.slow", {}, job_id="b1.0", index=0, attempt=2))
    assert not ex.running["b1.0"].handed, "another attempt's dispatch acknowledges nothing here"
    await run(ex, jobs[0])  # Kafka delivers it again: acknowledged with this batch
    assert ex.running["b1.0"].handed
    await asyncio.wait_for(ex.drain(0.1), 2)
    assert "b1.0" in ex.running, "a handed-over job is left to run while draining"
    await ex.shutdown()
