"""Per-key request rate limits: one token bucket per API key, in this process.

A key may make `burst` requests at once and `per_s` a second on average. A request the bucket
cannot pay for is refused with the time until it could be paid (the `Retry-After` the caller
gets). Buckets live in one API process: with N processes behind a balancer a key gets up to N
times its limit, which is the usual trade of a limit kept off the store's critical path."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    per_s: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.per_s <= 0


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class KeyLimiter:
    """Buckets by key id. `take` is pure given `now` (a monotonic clock in seconds)."""

    max_keys: int = 100_000
    buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key_id: str, limit: Limit, now: float) -> float:
        """0 when the request may go ahead (a token is taken), else the seconds to wait."""
        if limit.unlimited:
            return 0.0
        bucket = self.buckets.get(key_id)
        if bucket is None:
            if len(self.buckets) >= self.max_keys:
                self.buckets.clear()  # a flood of keys resets everyone to a full bucket
            bucket = self.buckets[key_id] = _Bucket(float(limit.burst), now)
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.at) * limit.per_s)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / limit.per_s


def retry_after(wait_s: float) -> str:
    """The `Retry-After` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
