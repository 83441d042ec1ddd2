"""The rollback service's Prometheus metrics: rollbacks by outcome, jobs restored."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from contracts.events import RollbackCompleted, RollbackFailed, RollbackProgress, RollbackStarted
from servicekit.publisher import Outgoing

ROLLBACKS = Counter(
    "batchyard_rollbacks_total",
    "Rollback steps reached, by step (started, completed, failed)",
    ["step"],
)
JOBS_RESTORED = Counter(
    "batchyard_rollback_jobs_restored_total",
    "Jobs rollbacks compensated (counted as their progress is announced, at checkpoints)",
)
_STEPS = {
    RollbackStarted.TYPE: "started",
    RollbackCompleted.TYPE: "completed",
    RollbackFailed.TYPE: "failed",
}


def observe(messages: Sequence[Outgoing]) -> None:
    """Counts rollback steps and restored jobs among published events."""
    for message in messages:
        kind = message.envelope.type
        if kind == RollbackProgress.TYPE:
            JOBS_RESTORED.inc()
        elif (step := _STEPS.get(kind)) is not None:
            ROLLBACKS.labels(step).inc()
