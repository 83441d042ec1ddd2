"""The rollback service's Prometheus metrics: rollbacks by outcome."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from contracts.events import RollbackCompleted, RollbackFailed, RollbackStarted
from servicekit.publisher import Outgoing

ROLLBACKS = Counter(
    "batchyard_rollbacks_total",
    "Rollback steps reached, by step (started, completed, failed)",
    ["step"],
)
_STEPS = {
    RollbackStarted.TYPE: "started",
    RollbackCompleted.TYPE: "completed",
    RollbackFailed.TYPE: "failed",
}


def observe(messages: Sequence[Outgoing]) -> None:
    """Counts rollback steps among published events."""
    for message in messages:
        step = _STEPS.get(message.envelope.type)
        if step is not None:
            ROLLBACKS.labels(step).inc()
