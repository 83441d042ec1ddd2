"""Retention: which batches a policy picks (never a non-terminal one), and the keeper that runs
it: once per period, only with the lease, dry runs change nothing, chunks re-checked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scheduler_fakes import InMemorySchedulerStore

from contracts.codec import envelope_for
from contracts.events import (
    BatchDeleted,
    RetentionPolicyChanged,
    RetentionRunRequested,
    RollbackCompleted,
)
from contracts.topics import Topics
from contracts.vocabulary import BatchStatus
from scheduler.domain.retention import (
    BatchAge,
    RetentionPolicy,
    plan_retention,
)
from scheduler.domain.states import BATCH_STATES
from scheduler.handlers.engine import LeadershipLost
from scheduler.handlers.retention import RetentionKeeper
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.unit
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(
    enabled=True,
    archive_after_days=7,
    failed_archive_after_days=30,
    delete_archived_after_days=90,
)
TERMINAL = {"completed", "completed_with_errors", "failed", "cancelled"}
TERMINAL |= {"rolled_back", "rollback_failed"}


def aged(status: str, days: float, **fields: Any) -> BatchAge:
    at = NOW - timedelta(days=days)
    if status == "archived":
        return BatchAge(f"b_{status}_{days}", status, finished_at=at, archived_at=at, **fields)
    return BatchAge(f"b_{status}_{days}", status, finished_at=at, **fields)


@pytest.mark.parametrize("status", BATCH_STATES)
def test_no_batch_that_is_not_terminal_is_ever_picked(status: BatchStatus) -> None:
    ancient = aged(status, 10_000)
    plan = plan_retention(
        RetentionPolicy(True, 0, 0, 0), [ancient], NOW + timedelta(days=1), limit=10
    )
    picked = {b.batch_id for b in plan.archive + plan.delete}
    if status in TERMINAL or status == "archived":
        assert picked == {ancient.batch_id}
        assert plan.left_alone == 0
    else:
        assert picked == set()
        assert plan.left_alone == 1


def test_ages_by_status_failed_kept_longer() -> None:
    batches = [
        aged("completed", 8),
        aged("completed", 6),
        aged("failed", 8),
        aged("rollback_failed", 31),
        aged("cancelled", 7),
        aged("archived", 91),
        aged("archived", 89),
    ]
    plan = plan_retention(POLICY, batches, NOW, limit=100)
    assert [b.batch_id for b in plan.archive] == [
        "b_rollback_failed_31",
        "b_completed_8",
        "b_cancelled_7",
    ]
    assert [b.batch_id for b in plan.delete] == ["b_archived_91"]
    assert not plan.more


def test_a_batch_rolling_back_is_left_alone_until_its_rollback_ends() -> None:
    requested = NOW - timedelta(days=20)
    rolling = aged("completed", 40, rollback_requested_at=requested)
    assert plan_retention(POLICY, [rolling], NOW, 10).archive == ()
    assert plan_retention(POLICY, [rolling], NOW, 10).left_alone == 1
    ended = aged(
        "completed",
        40,
        rollback_requested_at=requested,
        rollback_finished_at=NOW - timedelta(days=8),
        rollback_outcome="rolled_back",
    )
    assert [b.batch_id for b in plan_retention(POLICY, [ended], NOW, 10).archive] == [
        ended.batch_id
    ]
    # its age counts from the rollback's end
    recent = aged(
        "completed",
        40,
        rollback_requested_at=requested,
        rollback_finished_at=NOW - timedelta(days=1),
        rollback_outcome="rolled_back",
    )
    assert plan_retention(POLICY, [recent], NOW, 10).archive == ()


def test_steps_switched_off_and_the_limit() -> None:
    batches = [aged("completed", d) for d in range(10, 20)] + [aged("archived", 100)]
    assert plan_retention(RetentionPolicy(True), batches, NOW, 100).archive == ()
    plan = plan_retention(POLICY, batches, NOW, limit=4)
    assert len(plan.delete) == 1
    assert len(plan.archive) == 3
    assert plan.more
    assert [b.batch_id for b in plan.archive] == [
        "b_completed_19",
        "b_completed_18",
        "b_completed_17",
    ]


# ---------------------------------------------------------------- the keeper


class PolicyMemory:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def all_policies(self) -> list[dict[str, Any]]:
        return list(self.docs.values())

    async def save_policy(self, doc: dict[str, Any]) -> None:
        self.docs[doc["_id"]] = dict(doc)


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


def keeper(
    *, active: set[str] | None = None, leader: list[bool] | None = None
) -> tuple[RetentionKeeper, InMemorySchedulerStore, RecordingPublisher, Clock]:
    store, sent, clock = InMemorySchedulerStore(), RecordingPublisher(), Clock()
    held = leader if leader is not None else [True]
    k = RetentionKeeper(
        policies=PolicyMemory(),
        batches=store,  # type: ignore[arg-type]
        publisher=sent,
        topics=Topics("t."),
        engine_lock=asyncio.Lock(),
        is_active=lambda batch_id: batch_id in (active or set()),
        fence=lambda: held[0],
        now=clock,
        period_s=3600,
        chunk_size=2,
    )
    return k, store, sent, clock


def put(store: InMemorySchedulerStore, batch_id: str, status: str, days: float) -> None:
    store.batches[batch_id] = {
        "_id": batch_id,
        "tenant": "acme",
        "status": status,
        "finished_at": NOW - timedelta(days=days),
    }
    store.jobs[f"{batch_id}.0"] = {"batch_id": batch_id, "index": 0, "status": "completed"}
    store.chunks[f"{batch_id}:0"] = {"batch_id": batch_id, "chunk": 0, "items": [{}]}


def policy_event(revision: int = 1, **fields: Any) -> tuple[Any, RetentionPolicyChanged]:
    body = {
        "enabled": True,
        "archive_after_days": 7,
        "delete_archived_after_days": 90,
        "revision": revision,
        **fields,
    }
    event = RetentionPolicyChanged(**body)
    return envelope_for(event, producer="batch-api", tenant="acme"), event


def run_event(run_id: str, dry_run: bool) -> tuple[Any, RetentionRunRequested]:
    event = RetentionRunRequested(run_id=run_id, dry_run=dry_run, requested_by="ada")
    return envelope_for(event, producer="batch-api", tenant="acme"), event


async def test_a_dry_run_changes_nothing_and_says_what_a_run_would_do() -> None:
    k, store, sent, _ = keeper()
    put(store, "b_old", "completed", 8)
    put(store, "b_new", "completed", 1)
    put(store, "b_running", "running", 100)
    await k.handle([policy_event()])
    before = (dict(store.batches), dict(store.jobs), dict(store.chunks))
    await k.handle([run_event("r_1", True)])
    assert (store.batches, store.jobs, store.chunks) == before
    [done] = [m.envelope.data for m in sent.of_type("RetentionRunCompleted")]
    assert done["dry_run"]
    assert done["archived_ids"] == ["b_old"]
    assert done["archived"] == 1
    assert done["skipped_non_terminal"] == 1
    assert sent.of_type("BatchArchived") == []


async def test_a_run_archives_then_deletes_and_never_touches_active_batches() -> None:
    k, store, sent, clock = keeper(active={"b_revived"})
    for name in ("b_1", "b_2", "b_3"):
        put(store, name, "completed", 8)
    put(store, "b_revived", "completed", 8)  # the engine holds it (a retry): left alone
    put(store, "b_paused", "paused", 50)
    await k.handle([policy_event()])
    await k.handle([run_event("r_1", False)])
    assert sorted(m.key for m in sent.of_type("BatchArchived")) == ["b_1", "b_2", "b_3"]
    for name in ("b_1", "b_2", "b_3"):
        assert store.batches[name]["status"] == "archived"
        assert not any(j["batch_id"] == name for j in store.jobs.values())
        assert not any(c["batch_id"] == name for c in store.chunks.values())
    assert store.batches["b_revived"]["status"] == "completed"
    assert store.batches["b_paused"]["status"] == "paused"
    assert "b_paused.0" in store.jobs
    assert "b_revived.0" in store.jobs

    clock.at = NOW + timedelta(days=91)
    await k.handle([run_event("r_2", False)])
    assert sorted(m.key for m in sent.of_type("BatchPurged")) == ["b_1", "b_2", "b_3"]
    assert set(store.batches) == {"b_revived", "b_paused"}
    # a redelivered request runs once
    await k.handle([run_event("r_2", False)])
    assert len(sent.of_type("RetentionRunCompleted")) == 2


async def test_periodic_runs_at_most_once_per_period_and_only_with_the_lease() -> None:
    leader = [True]
    k, store, _sent, clock = keeper(leader=leader)
    put(store, "b_1", "completed", 8)
    await k.handle([policy_event()])
    assert await k.tick() == 0  # a new policy waits one period
    clock.at = NOW + timedelta(seconds=3601)
    leader[0] = False
    assert await k.tick() == 0
    assert store.batches["b_1"]["status"] == "completed"
    leader[0] = True
    assert await k.tick() == 1
    assert await k.tick() == 0
    assert store.batches["b_1"]["status"] == "archived"
    # a new keeper (a restart, or the standby taking over) keeps the recorded last run
    k2, _, _, _ = keeper()
    k2.policies, k2.batches, k2.now = k.policies, store, clock
    await k2.recover()
    assert await k2.tick() == 0
    clock.at += timedelta(seconds=3600)
    assert await k2.tick() == 1


async def test_without_the_lease_a_real_run_writes_nothing() -> None:
    leader = [False]
    k, store, _, _ = keeper(leader=leader)
    put(store, "b_1", "completed", 8)
    leader[0] = True
    await k.handle([policy_event()])
    leader[0] = False
    with pytest.raises(LeadershipLost):
        await k.run("acme", "r_x", False, "manual", "ada")
    assert store.batches["b_1"]["status"] == "completed"


async def test_a_finished_rollback_makes_the_batch_rolled_back() -> None:
    k, store, _, clock = keeper()
    put(store, "b_1", "completed", 40)
    store.batches["b_1"]["rollback_requested_at"] = NOW - timedelta(days=10)
    await k.handle([policy_event()])
    await k.handle([run_event("r_1", False)])
    assert store.batches["b_1"]["status"] == "completed"  # rolling back: untouched
    done = RollbackCompleted(batch_id="b_1", rollback_id="rb_1")
    env = envelope_for(done, producer="rollback", tenant="acme")
    await k.handle([(env, done)])
    assert store.batches["b_1"]["rollback_outcome"] == "rolled_back"
    clock.at = env.occurred_at + timedelta(days=8)
    await k.handle([run_event("r_2", False)])
    assert store.batches["b_1"]["status"] == "archived"
    assert store.batches["b_1"]["status_before_archive"] == "rolled_back"


async def test_a_rollback_s_end_is_recorded_only_while_the_engine_is_not_writing() -> None:
    """The engine writes the same batch document; the local store loses one of two concurrent
    updates of a document, so the rollback's end waits for the engine's lock."""
    k, store, _, _ = keeper()
    put(store, "b_1", "completed", 1)
    done = RollbackCompleted(batch_id="b_1", rollback_id="rb_1")
    env = envelope_for(done, producer="rollback", tenant="acme")
    async with k.engine_lock:
        waiting = asyncio.create_task(k.handle([(env, done)]))
        await asyncio.sleep(0.05)
        assert "rollback_outcome" not in store.batches["b_1"]
        assert not waiting.done()
    await waiting
    assert store.batches["b_1"]["rollback_outcome"] == "rolled_back"


async def test_a_batch_deleted_by_hand_loses_its_documents_but_not_while_held() -> None:
    gone = BatchDeleted(batch_id="b_1", deleted_by="ada")
    env = envelope_for(gone, producer="batch-api", tenant="acme")
    k, store, _, _ = keeper(leader=[False])
    put(store, "b_1", "completed", 1)
    with pytest.raises(LeadershipLost):  # redelivered until a leader takes it
        await k.handle([(env, gone)])
    assert "b_1" in store.batches
    k, store, _, _ = keeper(active={"b_1"})
    put(store, "b_1", "completed", 1)
    await k.handle([(env, gone)])
    assert "b_1" in store.batches
    k, store, _, _ = keeper()
    put(store, "b_1", "completed", 1)
    put(store, "b_2", "completed", 1)
    await k.handle([(env, gone)])
    await k.handle([(env, gone)])  # a repeat changes nothing
    assert list(store.batches) == ["b_2"]
    assert [j["batch_id"] for j in store.jobs.values()] == ["b_2"]
    assert [c["batch_id"] for c in store.chunks.values()] == ["b_2"]


class SlowPolicies(PolicyMemory):
    """Holds the first write of a document until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def save_policy(self, doc: dict[str, Any]) -> None:
        if not self.held.is_set():
            self.held.set()
            await self.release.wait()
        await super().save_policy(doc)


async def test_a_policy_changed_while_the_tick_records_its_run_is_kept() -> None:
    """The tick wrote the policy it had read with its run's time after the change was
    written: the change was lost, in memory and in the store."""
    k, _store, _sent, clock = keeper()
    await k.handle([policy_event(revision=1, archive_after_days=7)])
    slow = SlowPolicies()
    slow.docs = dict(k.policies.docs)  # type: ignore[attr-defined]
    k.policies = slow
    clock.at = NOW + timedelta(seconds=3601)
    tick = asyncio.create_task(k.tick())
    await slow.held.wait()  # the tick is writing its run's time
    change = asyncio.create_task(k.handle([policy_event(revision=2, archive_after_days=30)]))
    await asyncio.sleep(0.01)
    slow.release.set()
    assert await tick == 1
    await change
    for doc in (k.tenants["acme"], slow.docs["acme"]):
        assert (doc["revision"], doc["archive_after_days"]) == (2, 30)
        assert doc["last_run_at"] == clock.at
