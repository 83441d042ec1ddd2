"""The rollback service's metrics count what its published events say: each job restored
(one `RollbackProgress` per job) and each rollback's start and end."""

from __future__ import annotations

import pytest

from contracts.codec import envelope_for
from contracts.events import RollbackFailed, RollbackProgress, RollbackStarted
from rollback.adapters import metrics
from servicekit.publisher import Outgoing

pytestmark = pytest.mark.unit


def sent(*events: RollbackProgress | RollbackStarted | RollbackFailed) -> list[Outgoing]:
    return [Outgoing("t", e.batch_id, envelope_for(e, producer="rollback")) for e in events]


def test_restored_jobs_and_rollback_outcomes_are_counted() -> None:
    restored = metrics.JOBS_RESTORED._value.get()
    failed = metrics.ROLLBACKS.labels("failed")._value.get()
    started = metrics.ROLLBACKS.labels("started")._value.get()
    metrics.observe(
        sent(
            RollbackStarted(batch_id="b", rollback_id="r", planned_jobs=3),
            *(
                RollbackProgress(batch_id="b", rollback_id="r", job_id=f"b.{i}", done=i, total=3)
                for i in (1, 2, 3)
            ),
            RollbackFailed(batch_id="b", rollback_id="r2", reason="no"),
        )
    )
    assert metrics.JOBS_RESTORED._value.get() - restored == 3
    assert metrics.ROLLBACKS.labels("started")._value.get() - started == 1
    assert metrics.ROLLBACKS.labels("failed")._value.get() - failed == 1
