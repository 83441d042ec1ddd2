"""Follow Batchyard's batches from Kafka, as another system would: a plain aiokafka consumer in
a consumer group of its own, reading `batchyard.batch.events`, with no Batchyard code.

    python examples/subscriber/follow_batches.py [--bootstrap 127.0.0.1:9092] [--prefix P]
        [--group NAME] [--batch ID [--until-ended]] [--max-seconds S]

Prints one line per batch event: when, the batch, the event, its status and counts. With
`--batch` only that batch's; with `--until-ended` too, it exits once that batch has ended: 0
when every job completed, 1 when it ended otherwise (with errors, failed or cancelled).
docs/events/README.md explains the three things every subscriber does, marked below: skip
what it has already applied (by the envelope's `seq`), tolerate what it does not know, and
commit offsets only after handling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

ENDED = {"BatchCompleted", "BatchFailed", "BatchCancelled"}


def describe(envelope: dict[str, Any]) -> str:
    """One line for a batch event."""
    data = envelope.get("data") or {}
    counts = data.get("counts") or {}
    done = sum(int(counts.get(k) or 0) for k in ("completed", "failed", "skipped", "cancelled"))
    line = (
        f"{envelope.get('occurred_at', '?')[:23]}  {envelope.get('batch_id')}  "
        f"{envelope.get('type', '?'):<18} {data.get('status', '?'):<22} "
        f"{done}/{counts.get('total', '?')} ended"
    )
    if counts.get("failed"):
        line += f", {counts['failed']} failed"
    if data.get("reason"):
        line += f": {data['reason']}"
    return line


class Follower:
    """What the subscriber has applied so far: the newest `seq` of each batch."""

    def __init__(self, batch: str | None) -> None:
        self.batch = batch
        self.newest: dict[str, int] = {}
        self.exit_code: int | None = None

    def handle(self, value: bytes | None) -> str | None:
        """The line to print for one record, or None when there is nothing new in it."""
        try:
            envelope = json.loads(value or b"")
            batch_id, seq, kind = envelope["batch_id"], int(envelope["seq"]), envelope["type"]
            status = envelope["data"].get("status")
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # (2) not an event this subscriber understands: skip it, never stop
        if self.batch is not None and batch_id != self.batch:
            return None
        # (1) At least once: a redelivery after a restart or a rebalance, or a replay, brings
        # events again. The scheduler numbers each batch's events, so anything not newer than
        # what was applied is a repeat (or older news) and is skipped.
        if seq <= self.newest.get(batch_id, 0):
            return None
        self.newest[batch_id] = seq
        if kind in ENDED and batch_id == self.batch:
            self.exit_code = 0 if status == "completed" else 1
        return describe(envelope)


async def follow(args: argparse.Namespace) -> int:
    consumer = AIOKafkaConsumer(
        f"{args.prefix}batchyard.batch.events",
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",  # a new group starts from the oldest event kept
        enable_auto_commit=False,
    )
    follower = Follower(args.batch)
    deadline = time.monotonic() + args.max_seconds if args.max_seconds else None
    await consumer.start()
    try:
        while deadline is None or time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=1000, max_records=500)
            for records in polled.values():
                for record in records:
                    line = follower.handle(record.value)
                    if line is not None:
                        print(line, flush=True)
            if polled:
                # (3) Commit only what was handled: a crash before this repeats these records
                # (skipped above as repeats), it never skips any.
                await consumer.commit()
            if args.until_ended and follower.exit_code is not None:
                return follower.exit_code
        print(f"stopped after {args.max_seconds:g} s", file=sys.stderr)
        return 2
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Follow batches from Batchyard's Kafka events.")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka's bootstrap servers")
    parser.add_argument("--prefix", default="", help="the deployment's BATCHYARD_TOPIC_PREFIX")
    parser.add_argument("--group", default="follow-batches", help="this subscriber's group id")
    parser.add_argument("--batch", help="only this batch's events")
    parser.add_argument(
        "--until-ended", action="store_true", help="with --batch: exit once that batch ended"
    )
    parser.add_argument("--max-seconds", type=float, help="give up after this long (exit 2)")
    args = parser.parse_args(argv)
    if args.until_ended and not args.batch:
        parser.error("--until-ended needs --batch")
    try:
        return asyncio.run(follow(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
