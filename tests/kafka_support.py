"""Reading Batchyard's topics in tests: every record now in them, to the end of each
partition (one poll returns what the first fetches brought: not every partition, nor all of
a long one)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts.topics import Topics
from servicekit.kafka import topic_partitions


def partitions_of(topics: Topics, names: list[str]) -> list[TopicPartition]:
    layout = topic_partitions(topics)
    return [TopicPartition(name, p) for name in names for p in range(layout[name])]


async def read_all(
    bootstrap: str, topics: Topics, names: list[str]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now in `topics`, in offset order per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = partitions_of(topics, names)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()
