"""The batch API's Prometheus metrics: batches and items accepted, and the commands it sent.
HTTP latency and status by route come from `servicekit.metrics` for every service."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from contracts.events import BatchCreated, BatchItemsAdded
from servicekit.publisher import Outgoing

BATCHES_CREATED = Counter(
    "batchyard_batches_created_total", "Batches accepted, by job type", ["job_type"]
)
ITEMS_ACCEPTED = Counter("batchyard_batch_items_accepted_total", "Batch items accepted")
COMMANDS_SENT = Counter(
    "batchyard_commands_sent_total", "Commands published to the scheduler, by type", ["type"]
)


def observe(messages: Sequence[Outgoing]) -> None:
    """Counts what the API published (after Kafka acknowledged it)."""
    for message in messages:
        kind, data = message.envelope.type, message.envelope.data
        COMMANDS_SENT.labels(kind).inc()
        if kind == BatchCreated.TYPE:
            BATCHES_CREATED.labels(data["job_type"]).inc()
        elif kind == BatchItemsAdded.TYPE:
            ITEMS_ACCEPTED.inc(len(data["items"]))
