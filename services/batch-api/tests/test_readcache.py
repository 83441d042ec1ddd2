"""The batch read cache: repeated reads within its time come from memory, this process's
writes show at once, concurrent misses share one load, failures are not remembered."""

from __future__ import annotations

import asyncio

import pytest

from batch_api.adapters.readcache import ReadCache

pytestmark = pytest.mark.unit


class Source:
    """A store that counts its reads; `value` is what it answers."""

    def __init__(self) -> None:
        self.value = "v1"
        self.reads = 0
        self.version = 0
        self.gate: asyncio.Event | None = None

    async def load(self) -> str:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.value


def cache(source: Source, ttl_s: float = 1.0) -> tuple[ReadCache[str], list[float]]:
    now = [100.0]
    return ReadCache(ttl_s, lambda: source.version, clock=lambda: now[0]), now


async def test_repeated_reads_within_the_time_hit_memory_and_later_ones_the_store() -> None:
    s = Source()
    c, now = cache(s)
    assert await c.get("b", s.load) == "v1"
    s.value = "v2"  # changed elsewhere (the reporter, another replica)
    now[0] += 0.5
    assert await c.get("b", s.load) == "v1"
    assert s.reads == 1
    now[0] += 0.6
    assert await c.get("b", s.load) == "v2"
    assert s.reads == 2


async def test_a_write_by_this_process_shows_at_once() -> None:
    s = Source()
    c, _ = cache(s)
    await c.get("b", s.load)
    s.value, s.version = "v2", 1
    assert await c.get("b", s.load) == "v2"


async def test_a_read_that_overlapped_a_write_is_not_kept() -> None:
    s = Source()
    c, _ = cache(s)
    s.gate = asyncio.Event()
    reading = asyncio.create_task(c.get("b", s.load))
    await asyncio.sleep(0)
    s.version = 1  # a write lands while the read is in flight: its answer may predate it
    s.gate.set()
    assert await reading == "v1"
    s.value = "v2"
    assert await c.get("b", s.load) == "v2"


async def test_concurrent_misses_share_one_load() -> None:
    s = Source()
    c, _ = cache(s)
    s.gate = asyncio.Event()
    readers = [asyncio.create_task(c.get("b", s.load)) for _ in range(50)]
    await asyncio.sleep(0)
    s.gate.set()
    assert await asyncio.gather(*readers) == ["v1"] * 50
    assert s.reads == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_remembered() -> None:
    s = Source()
    c, _ = cache(s)
    gate = asyncio.Event()

    async def failing() -> str:
        await gate.wait()
        raise ConnectionError("store away")

    readers = [asyncio.create_task(c.get("b", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await c.get("b", s.load) == "v1"


async def test_a_cancelled_loader_does_not_cancel_the_other_readers() -> None:
    s = Source()
    c, _ = cache(s)
    s.gate = asyncio.Event()
    first = asyncio.create_task(c.get("b", s.load))
    await asyncio.sleep(0)
    second = asyncio.create_task(c.get("b", s.load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    s.gate.set()
    assert await second == "v1"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_no_time_means_no_cache_and_the_oldest_entries_go_first() -> None:
    s = Source()
    off, _ = cache(s, ttl_s=0)
    await off.get("b", s.load)
    await off.get("b", s.load)
    assert s.reads == 2
    small = ReadCache[str](1.0, lambda: 0, max_entries=2)
    for key in ("a", "b", "c"):
        await small.get(key, s.load)
    s.reads = 0
    await small.get("a", s.load)  # evicted: read again
    await small.get("c", s.load)  # kept
    assert s.reads == 1


async def test_an_entry_older_than_what_the_live_feed_saw_is_not_used_or_kept() -> None:
    """A batch read is refused once a newer snapshot went by live: a client reacting to an
    event reads the store, and a read from before the projection caught up is not kept."""
    s = Source()
    newest = {"b": 1}
    c = ReadCache[str](1.0, lambda: 0, fresh=lambda key, value: int(value[1:]) >= newest[key])
    assert await c.get("b", s.load) == "v1"
    assert await c.get("b", s.load) == "v1"
    assert s.reads == 1
    newest["b"] = 2  # a snapshot with seq 2 went by; the store still answers v1
    assert await c.get("b", s.load) == "v1"
    assert await c.get("b", s.load) == "v1"
    assert s.reads == 3, "a read older than the live feed was kept"
    s.value = "v2"  # the projection caught up
    assert await c.get("b", s.load) == "v2"
    assert await c.get("b", s.load) == "v2"
    assert s.reads == 4
