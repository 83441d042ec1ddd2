"""What decoding a consumed batch costs, per record: FastStream's default decoder (which the
batch subscribers used to run, parsing every record into a body nobody read) against the
envelope decoding the handlers do themselves (`contracts.codec.decode`). In-process, on
2,000 copies of a `JobCompleted` envelope; best of --rounds.

    python bench/decode.py [--records 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser

from contracts.codec import decode, encode, envelope_for
from contracts.events import JobCompleted


def records(n: int) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    now = datetime.now(UTC)
    event = JobCompleted(
        job_id="b0123456789:000001",
        batch_id="b0123456789",
        attempt=1,
        executor_id="executor-1",
        started_at=now,
        finished_at=now,
        duration_ms=1.0,
        output={"slept_s": 0},
        metrics={},
    )
    body = encode(envelope_for(event, producer="executor-1", batch_id=event.batch_id))
    return tuple(
        ConsumerRecord("t", 0, i, 0, 0, b"k", body, None, 1, len(body), []) for i in range(n)
    )


async def best_us(fn: Callable[[], Awaitable[object]], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - started)
    return best * 1e6 / n


async def main(n: int, rounds: int) -> None:
    batch = records(n)
    parser = AioKafkaBatchParser(msg_class=KafkaMessage, regex=None)
    message = await parser.parse_batch(batch)

    async def ours() -> object:
        return [decode(r.value or b"") for r in batch]

    async def faststream() -> object:
        return await parser.decode_batch(message)

    theirs_us, ours_us = await best_us(faststream, n, rounds), await best_us(ours, n, rounds)
    print(f"record size {len(batch[0].value or b'')} bytes, {n} records, best of {rounds}")
    print(f"FastStream's default batch decoder  {theirs_us:6.1f} us/record")
    print(f"envelope decode (the handler's)     {ours_us:6.1f} us/record")
    print(f"ratio default/handler               {theirs_us / ours_us:6.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.rounds))
