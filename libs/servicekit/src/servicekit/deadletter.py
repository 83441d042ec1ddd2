"""The dead-letter topic: where a consumer puts what it cannot parse or apply."""

from __future__ import annotations

import base64
import logging

import orjson
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from contracts.envelope import utcnow
from servicekit.metrics import DEAD_LETTERS

log = logging.getLogger(__name__)


# The most of a poison record's bytes its dead-letter copy holds: base64 adds a third, and a
# copy larger than Kafka takes (1 MiB by default) could not be sent, so the consumer could
# never get past the record.
MAX_COPIED_BYTES = 512 * 1024


class DeadLetters:
    """Publishes a poison record with the reason and its original bytes, so nothing that was
    consumed is dropped silently. The record is JSON: `reason`, `consumer`, `source_topic`,
    `partition`, `offset`, `key`, `value_b64`, `value_bytes` (the record's size),
    `value_truncated` (true when `value_b64` holds only its first `MAX_COPIED_BYTES`), `at`;
    the whole record stays at its offset in the source topic while Kafka keeps it."""

    def __init__(
        self, broker: KafkaBroker, topic: str, consumer: str, service: str | None = None
    ) -> None:
        self._broker = broker
        self._topic = topic
        self._consumer = consumer
        self._service = service or consumer
        self.count = 0

    async def send(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        value = record.value or b""
        body = {
            "reason": reason,
            "consumer": self._consumer,
            "source_topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode("utf-8", "replace") if record.key else None,
            "value_b64": base64.b64encode(value[:MAX_COPIED_BYTES]).decode(),
            "value_bytes": len(value),
            "value_truncated": len(value) > MAX_COPIED_BYTES,
            "at": utcnow().isoformat(),
        }
        await self._broker.publish(orjson.dumps(body), self._topic, key=record.key)
        self.count += 1
        DEAD_LETTERS.labels(self._service, record.topic).inc()
        log.warning(
            "dead-lettered %s:%s@%s: %s", record.topic, record.partition, record.offset, reason
        )
