"""The cron clock: it follows schedule changes, fires due runs once with stable run ids, obeys
the catch-up policy after downtime, and writes nothing without the lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.codec import envelope_for
from contracts.events import ScheduleChanged
from contracts.topics import Topics
from scheduler.handlers.engine import LeadershipLost
from scheduler.handlers.schedules import ScheduleClock
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.unit
T = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


class MemoryStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def all_schedules(self) -> list[dict[str, Any]]:
        return [d for d in self.docs.values() if not d.get("deleted")]

    async def save_schedule(self, doc: dict[str, Any]) -> None:
        self.docs[doc["_id"]] = dict(doc)


class Clock:
    def __init__(self) -> None:
        self.at = T

    def __call__(self) -> datetime:
        return self.at


def change(revision: int, **fields: Any) -> tuple[Any, ScheduleChanged]:
    event = ScheduleChanged(
        schedule_id="s_1", cron=fields.pop("cron", "*/5 * * * *"), revision=revision, **fields
    )
    return envelope_for(event, producer="batch-api", tenant="acme"), event


def make() -> tuple[ScheduleClock, MemoryStore, RecordingPublisher, Clock]:
    store, sent, clock = MemoryStore(), RecordingPublisher(), Clock()
    return ScheduleClock(store, sent, Topics("t."), now=clock), store, sent, clock


def runs(sent: RecordingPublisher) -> list[tuple[str, bool]]:
    return [(m.envelope.data["run_id"], m.envelope.data["missed"]) for m in sent.sent]


async def test_a_schedule_fires_each_run_once_under_a_stable_name() -> None:
    clock, store, sent, now = make()
    await clock.handle([change(1)])
    assert store.docs["s_1"]["next_run_at"] == datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    assert await clock.tick() == 0
    now.at = datetime(2026, 3, 1, 12, 5, 1, tzinfo=UTC)
    assert await clock.tick() == 1
    assert await clock.tick() == 0  # not twice
    now.at = datetime(2026, 3, 1, 12, 10, 2, tzinfo=UTC)
    await clock.tick()
    assert runs(sent) == [("s_1@2026-03-01T12:05:00Z", False), ("s_1@2026-03-01T12:10:00Z", False)]
    first = sent.sent[0]
    assert (first.topic, first.key, first.envelope.tenant) == (
        "t.batchyard.schedules",
        "s_1",
        "acme",
    )
    # The same run fired again (after a crash) carries the same event id.
    again = clock._trigger(store.docs["s_1"], datetime(2026, 3, 1, 12, 5, tzinfo=UTC), False)
    assert again.envelope.event_id == first.envelope.event_id


async def test_a_restarted_clock_catches_up_by_policy() -> None:
    clock, store, sent, now = make()
    await clock.handle([change(1, catch_up="latest")])
    now.at = datetime(2026, 3, 1, 12, 31, 30, tzinfo=UTC)  # down for half an hour
    restarted = ScheduleClock(store, sent, Topics("t."), now=now)
    await restarted.recover()
    assert await restarted.tick() == 1
    assert runs(sent) == [("s_1@2026-03-01T12:30:00Z", True)]
    assert restarted.skipped == 5
    assert store.docs["s_1"]["next_run_at"] == datetime(2026, 3, 1, 12, 35, tzinfo=UTC)


async def test_changes_apply_by_revision_and_disable_stops_firing() -> None:
    clock, store, sent, now = make()
    await clock.handle([change(2, cron="0 * * * *")])
    await clock.handle([change(1, cron="* * * * *")])  # older: ignored
    assert store.docs["s_1"]["cron"] == "0 * * * *"
    await clock.handle([change(3, cron="0 * * * *", enabled=False)])
    now.at = T + timedelta(hours=3)
    assert await clock.tick() == 0
    await clock.handle([change(4, cron="0 * * * *")])  # enabled again: due from now on
    assert store.docs["s_1"]["next_run_at"] == datetime(2026, 3, 1, 15, 0, tzinfo=UTC) + timedelta(
        hours=1
    )
    await clock.handle([change(5, cron="0 * * * *", deleted=True)])
    now.at = T + timedelta(hours=5)
    assert await clock.tick() == 0
    assert sent.sent == []


async def test_no_lease_no_firing() -> None:
    clock, _, sent, now = make()
    await clock.handle([change(1)])
    clock.fence = lambda: False
    now.at = T + timedelta(minutes=5)
    with pytest.raises(LeadershipLost):
        await clock.tick()
    assert sent.sent == []
