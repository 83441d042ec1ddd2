"""A short-lived memory of batch reads, so that many clients polling one batch cost the store
one read per `ttl_s` instead of one per request.

An entry is used only while it is younger than `ttl_s` and no write of this process has
touched the registry since it was read (the registry's `version`): a client that changes a
batch through this API reads its change back at once. Changes made elsewhere (the reporter's
progress, another API replica) show after at most `ttl_s`, which is small beside the
projection's own lag. A `fresh` check may refuse an entry sooner: batch reads refuse one older
than the latest snapshot the live feed has seen, so a client that reacts to a server-sent
event by reading the batch gets what the store holds, not what it held a moment before.
Concurrent misses of one key share one load."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass
class _Entry(Generic[V]):
    value: V
    read_at: float
    version: int


class ReadCache(Generic[V]):
    def __init__(
        self,
        ttl_s: float,
        version: Callable[[], int],
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        fresh: Callable[[str, V], bool] = lambda key, value: True,
    ) -> None:
        self.ttl_s = ttl_s
        self.fresh = fresh
        self.version = version
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future[V]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        if self.ttl_s <= 0:
            return await load()
        version = self.version()
        entry = self._entries.get(key)
        if (
            entry is not None
            and entry.version == version
            and self.clock() - entry.read_at < self.ttl_s
            and self.fresh(key, entry.value)
        ):
            return entry.value
        pending = self._loading.get((key, version))
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # this reader was cancelled
                return await load()  # the reader that was loading was cancelled
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[(key, version)] = future
        read_at = self.clock()
        try:
            value = await load()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no warning if nobody else waited
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._loading[(key, version)]
        future.set_result(value)
        if self.version() == version and self.fresh(key, value):  # nothing newer meanwhile
            self._entries[key] = _Entry(value, read_at, version)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value
