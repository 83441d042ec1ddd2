"""The scheduler's leader lease on the real store: one holder, takeover only after expiry,
a fencing token that grows, and a deposed leader that learns it."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from scheduler.adapters.leader import MongoLeaderLease

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_one_leader_then_takeover_after_expiry(db: AsyncDatabase[Any]) -> None:
    clock = Clock()
    a = MongoLeaderLease(db, "a", ttl_s=10, clock=clock)
    b = MongoLeaderLease(db, "b", ttl_s=10, clock=clock)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    clock.now += 5
    assert await a.renew()
    clock.now += 9  # a renewed at +5, so the lease runs to +15
    assert not await b.try_acquire()
    assert a.still_valid() is False, "a acts only within 80% of the TTL after its renewal"
    clock.now += 2  # +16: expired
    assert await b.try_acquire()
    assert b.token == (a.token or 0) + 1
    assert not await a.renew(), "the deposed leader must learn it lost the lease"
    assert await b.renew()


async def test_a_restarted_holder_takes_its_lease_back(db: AsyncDatabase[Any]) -> None:
    clock = Clock()
    first = MongoLeaderLease(db, "sched-1", ttl_s=10, clock=clock)
    assert await first.try_acquire()
    again = MongoLeaderLease(db, "sched-1", ttl_s=10, clock=clock)  # same instance id, new process
    assert await again.try_acquire()
    assert again.token == 2
