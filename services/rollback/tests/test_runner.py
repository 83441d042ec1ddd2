"""The runner of queued rollbacks, with an in-memory queue that keeps leases as the store's
does: rollbacks of different batches side by side, those of one batch in order, "not now"
tried again, anything else ended as failed, and leases taken over, kept, lost and given up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from contracts.codec import envelope_for
from contracts.events import RollbackRequested
from rollback.domain.request import Request
from rollback.handlers.runner import Runner
from servicekit.consume import TransientError

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Entry:
    request: Request
    owner: str | None = None
    lease_until: datetime = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class FakeQueue:
    entries: dict[str, Entry] = field(default_factory=dict)

    async def add(self, request: Request) -> None:
        self.entries.setdefault(request.rollback_id, Entry(request))

    async def pending(self) -> list[Request]:
        return sorted((e.request for e in self.entries.values()), key=lambda r: r.occurred_at)

    async def claim(self, rollback_id: str, owner: str, until: datetime) -> bool:
        entry = self.entries.get(rollback_id)
        if entry is None:
            return False
        if entry.owner != owner and entry.lease_until >= datetime.now(UTC):
            return False
        entry.owner, entry.lease_until = owner, until
        return True

    async def release(self, rollback_id: str, owner: str) -> None:
        entry = self.entries.get(rollback_id)
        if entry is not None and entry.owner == owner:
            entry.owner, entry.lease_until = None, datetime(1970, 1, 1, tzinfo=UTC)

    async def done(self, rollback_id: str) -> None:
        self.entries.pop(rollback_id, None)

    async def drop_batch(self, batch_id: str) -> None:
        for key in [k for k, e in self.entries.items() if e.request.batch_id == batch_id]:
            del self.entries[key]


def asked(batch_id: str, n: int, dry_run: bool = False) -> Request:
    e = RollbackRequested(batch_id=batch_id, requested_by="u", dry_run=dry_run)
    env = envelope_for(e, producer="api", event_id=f"{batch_id}-{n}")
    return Request.of(env.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)}), e)


@dataclass
class Work:
    """The runs' side: which ran, in what order; a run can be held until released, or fail."""

    started: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    gave_up: dict[str, str] = field(default_factory=dict)
    hold: dict[str, asyncio.Event] = field(default_factory=dict)
    fail: dict[str, list[Exception]] = field(default_factory=dict)

    async def run(self, request: Request) -> None:
        name = f"{request.batch_id}?" if request.event.dry_run else request.batch_id
        self.started.append(name)
        failures = self.fail.get(request.rollback_id)
        if failures:
            raise failures.pop(0)
        if (gate := self.hold.get(name)) is not None:
            await gate.wait()
        self.ended.append(name)

    async def give_up(self, request: Request, reason: str) -> None:
        self.gave_up[request.batch_id] = reason


def runner(queue: FakeQueue, work: Work, owner: str = "me", **kw: float) -> Runner:
    return Runner(queue, work.run, work.give_up, owner, scan_s=0.05, **kw)  # type: ignore[arg-type]


async def until(check: Callable[[], bool], within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.01)


async def serving(r: Runner, body: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.create_task(r.serve())
    try:
        await body()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_long_rollback_does_not_hold_another_batchs() -> None:
    queue, work = FakeQueue(), Work(hold={"a": asyncio.Event()})
    r = runner(queue, work)
    for request in (asked("a", 1), asked("b", 2)):
        await queue.add(request)

    async def body() -> None:
        await until(lambda: work.ended == ["b"])
        assert list(queue.entries) == [asked("a", 1).rollback_id]  # b's is done, a's runs
        work.hold["a"].set()
        await until(lambda: not queue.entries)

    await serving(r, body)
    assert work.ended == ["b", "a"]


async def test_rollbacks_of_one_batch_run_one_after_the_other_in_order() -> None:
    queue, work = FakeQueue(), Work(hold={"a": asyncio.Event()})
    r = runner(queue, work)
    await queue.add(asked("a", 2))
    await queue.add(asked("a", 1))

    async def body() -> None:
        await until(lambda: work.started == ["a"])
        await asyncio.sleep(0.2)  # several scans: the second must wait for the first
        assert work.started == ["a"]
        work.hold["a"].set()
        await until(lambda: not queue.entries)

    await serving(r, body)
    assert work.started == work.ended == ["a", "a"]


async def test_a_dry_run_neither_waits_for_nor_holds_up_a_rollback_of_its_batch() -> None:
    """Dry runs are named `<batch>?` here: a's, asked first, is held until the end."""
    queue, work = FakeQueue(), Work(hold={"a?": asyncio.Event(), "a": asyncio.Event()})
    r = runner(queue, work, concurrency=3)
    await queue.add(asked("a", 1, dry_run=True))
    await queue.add(asked("a", 2))
    await queue.add(asked("a", 3))

    async def body() -> None:
        await until(lambda: sorted(work.started) == ["a", "a?"])
        await asyncio.sleep(0.2)  # several scans: a's second rollback waits for its first
        assert sorted(work.started) == ["a", "a?"]
        work.hold["a"].set()
        await until(lambda: work.ended == ["a", "a"])
        work.hold["a?"].set()
        await until(lambda: not queue.entries)

    await serving(r, body)
    assert work.ended == ["a", "a", "a?"]


async def test_dry_runs_never_take_the_last_slot() -> None:
    queue, work = FakeQueue(), Work(hold={"a?": asyncio.Event(), "b?": asyncio.Event()})
    r = runner(queue, work, concurrency=2)
    await queue.add(asked("a", 1, dry_run=True))
    await queue.add(asked("b", 2, dry_run=True))
    await queue.add(asked("c", 3))

    async def body() -> None:
        await until(lambda: work.ended == ["c"])
        assert work.started == ["c", "a?"]  # the rollback first, one check beside it
        work.hold["a?"].set()
        work.hold["b?"].set()
        await until(lambda: not queue.entries)

    await serving(r, body)
    assert sorted(work.ended) == ["a?", "b?", "c"]


async def test_at_most_concurrency_rollbacks_run_at_once() -> None:
    gates = {b: asyncio.Event() for b in "abc"}
    queue, work = FakeQueue(), Work(hold=gates)
    r = runner(queue, work, concurrency=2)
    for n, b in enumerate("abc"):
        await queue.add(asked(b, n))

    async def body() -> None:
        await until(lambda: len(work.started) == 2)
        await asyncio.sleep(0.2)
        assert work.started == ["a", "b"]
        gates["b"].set()
        await until(lambda: work.started == ["a", "b", "c"])
        gates["a"].set()
        gates["c"].set()
        await until(lambda: not queue.entries)

    await serving(r, body)


async def test_not_now_is_tried_again_and_an_error_ends_the_rollback_as_failed() -> None:
    queue, work = FakeQueue(), Work()
    flaky, broken = asked("a", 1), asked("b", 2)
    work.fail = {
        flaky.rollback_id: [TransientError("batch a is not in the read model yet")] * 2,
        broken.rollback_id: [KeyError("data")],
    }
    r = runner(queue, work)
    await queue.add(flaky)
    await queue.add(broken)

    async def body() -> None:
        await until(lambda: not queue.entries)

    await serving(r, body)
    assert work.started.count("a") == 3
    assert work.ended == ["a"]
    assert work.gave_up == {"b": "KeyError: 'data'"}


async def test_another_instances_live_lease_is_left_and_an_expired_one_taken_over() -> None:
    queue, work = FakeQueue(), Work()
    request = asked("a", 1)
    await queue.add(request)
    assert await queue.claim(request.rollback_id, "other", datetime.now(UTC) + timedelta(hours=1))
    r = runner(queue, work, owner="me")
    assert await r.round() == []
    assert work.started == []
    queue.entries[request.rollback_id].lease_until = datetime.now(UTC) - timedelta(seconds=1)
    (task,) = await r.round()  # the other instance stopped renewing: it died
    await task
    assert work.ended == ["a"]
    assert not queue.entries


async def test_a_lease_is_renewed_while_the_rollback_runs_and_a_lost_one_stops_it() -> None:
    queue, work = FakeQueue(), Work(hold={"a": asyncio.Event()})
    request = asked("a", 1)
    await queue.add(request)
    r = runner(queue, work, owner="me", lease_s=0.3)
    (task,) = await r.round()
    await asyncio.sleep(0.5)  # longer than the lease: renewed meanwhile
    entry = queue.entries[request.rollback_id]
    assert entry.owner == "me"
    assert entry.lease_until > datetime.now(UTC)
    entry.owner = "other"  # taken over (this instance stalled past its lease)
    entry.lease_until = datetime.now(UTC) + timedelta(hours=1)
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert work.ended == []
    assert request.rollback_id in queue.entries
    assert r.running == {}


async def test_stopping_gives_the_leases_up_for_another_instance() -> None:
    queue, work = FakeQueue(), Work(hold={"a": asyncio.Event()})
    request = asked("a", 1)
    await queue.add(request)
    first = runner(queue, work, owner="first")
    await first.round()
    await until(lambda: work.started == ["a"])
    await first.stop()
    assert queue.entries[request.rollback_id].owner is None
    work.hold["a"].set()
    second = runner(queue, work, owner="second")
    (task,) = await second.round()
    await task
    assert work.started == ["a", "a"]
    assert work.ended == ["a"]
    assert not queue.entries


async def test_the_same_instance_restarted_goes_on_without_waiting_for_its_lease() -> None:
    queue, work = FakeQueue(), Work()
    request = asked("a", 1)
    await queue.add(request)
    assert await queue.claim(request.rollback_id, "host:8002", datetime.now(UTC) + timedelta(1))
    # the process died holding the lease; it starts again on the same host and port
    (task,) = await runner(queue, work, owner="host:8002").round()
    await task
    assert work.ended == ["a"]


async def test_a_retry_falls_due_without_waiting_for_the_next_scan() -> None:
    queue, work = FakeQueue(), Work()
    flaky = asked("a", 1)
    work.fail = {flaky.rollback_id: [TransientError("the store is away")]}
    r = runner(queue, work)
    r.scan_s = 60.0  # the backoff after one failure is 0.4 s
    await queue.add(flaky)

    async def body() -> None:
        await until(lambda: work.ended == ["a"], within=3.0)

    await serving(r, body)
