"""A rollback of a batch without backups is refused with a clear reason, once."""

from __future__ import annotations

import pytest

from contracts.codec import envelope_for
from contracts.events import RollbackRequested
from contracts.topics import Topics
from rollback.handlers.rollbacks import Rollbacks
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.unit


class NoBackups:
    async def count(self, batch_id: str) -> int:
        return 0


async def test_no_backups_means_a_refusal_with_the_reason() -> None:
    out = RecordingPublisher()
    rollbacks = Rollbacks(NoBackups(), out, Topics())
    request = RollbackRequested(batch_id="b1", requested_by="u")
    env = envelope_for(request, producer="api")
    await rollbacks.handle([(env, request)])
    await rollbacks.handle([(env, request)])  # redelivered
    assert [m.envelope.type for m in out.sent] == ["RollbackStarted", "RollbackFailed"] * 2
    assert "no backups" in out.sent[1].envelope.data["reason"]
    assert out.sent[1].envelope.event_id == out.sent[3].envelope.event_id, "not idempotent"
