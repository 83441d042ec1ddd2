"""The queue of rollbacks asked for, on the real store: a request is kept once however often
it is delivered, read back oldest first, and run under a lease that another instance can
take only once it has run out or was given up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from contracts.codec import envelope_for
from contracts.events import RollbackRequested
from rollback.adapters.queue import MongoQueue
from rollback.domain.request import Request

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def asked(batch_id: str, n: int, **kw: object) -> Request:
    e = RollbackRequested(batch_id=batch_id, requested_by="ops", **kw)  # type: ignore[arg-type]
    env = envelope_for(e, producer="api", event_id=f"{batch_id}-{n}", tenant="acme")
    return Request.of(env.model_copy(update={"occurred_at": T0 + timedelta(seconds=n)}), e)


async def test_requests_are_kept_once_and_read_back_oldest_first(
    db: AsyncDatabase[dict[str, object]],
) -> None:
    queue = MongoQueue(db)
    later, earlier = asked("b2", 2, force=True, job_ids=["b2.1"]), asked("b1", 1, dry_run=True)
    for request in (later, earlier, later):
        await queue.add(request)
    assert await queue.pending() == [earlier, later]  # the event, tenant and time as asked
    await queue.done(earlier.rollback_id)
    await queue.drop_batch("b3")
    assert await queue.pending() == [later]
    await queue.drop_batch("b2")
    assert await queue.pending() == []


async def test_a_lease_is_held_renewed_taken_over_when_run_out_and_given_up(
    db: AsyncDatabase[dict[str, object]],
) -> None:
    queue = MongoQueue(db)
    request = asked("b1", 1)
    rid = request.rollback_id
    assert not await queue.claim(rid, "a", T0), "claimed a rollback that is not queued"
    await queue.add(request)
    soon = datetime.now(UTC) + timedelta(seconds=30)
    assert await queue.claim(rid, "a", soon)
    assert not await queue.claim(rid, "b", soon), "took a live lease"
    assert await queue.claim(rid, "a", soon + timedelta(seconds=5)), "could not renew its own"
    await queue.release(rid, "b")  # not b's to give up
    assert not await queue.claim(rid, "b", soon)
    await queue.release(rid, "a")
    assert await queue.claim(rid, "b", datetime.now(UTC) - timedelta(seconds=1))
    assert await queue.claim(rid, "a", soon), "could not take over a lease run out"
    await queue.add(request)  # delivered again while it runs: the lease stays
    assert not await queue.claim(rid, "b", soon)
