"""Which partition a keyed message goes to: the same as aiokafka's default partitioner and
Java's clients (murmur2 of the key, non-negative, modulo the partition count), computed in
half the time and remembered for recent keys.

Every event about a batch is keyed by its batch id, so a producer hashes the same few keys
again and again; aiokafka's pure-Python murmur2 took ~4.4 µs a message, 3–5% of an
executor's and of the scheduler's CPU under load (docs/performance.md, session 13)."""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data` as an unsigned 32-bit number (aiokafka's `murmur2`)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length // 4
    for k in struct.unpack_from(f"<{whole}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail, extra = whole * 4, length & 3
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class KeyPartitioner:
    """An aiokafka `partitioner`: keyed messages by murmur2 of the key, as the default one;
    a message without a key to a random available partition. Remembers the hash of up to
    `remember` keys (forgets them all when full: keys that are used once, such as job ids,
    then cost one lookup more)."""

    def __init__(self, remember: int = 4096) -> None:
        self.remember = remember
        self._hashes: dict[bytes, int] = {}

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= self.remember:
                self._hashes.clear()
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[h % len(all_partitions)]
