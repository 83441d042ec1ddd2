"""Per-job-type rate limits (jobs started per second), enforced at dispatch.

The scheduler is the only dispatcher, so a token bucket here holds across every executor. A
bucket holds at most `burst` tokens (one second's worth by default, and never less than one)
and refills continuously at `rate` tokens per second; each dispatch takes one token. Over any
window of `t` seconds at most `burst + rate * t` jobs of that type are dispatched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class InvalidRateLimits(ValueError):
    """A rate-limit specification could not be parsed."""


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate: float, now: float, burst: float | None = None) -> TokenBucket:
        size = max(1.0, rate if burst is None else burst)
        return cls(rate=rate, burst=size, tokens=size, updated_at=now)

    def _refill(self, now: float) -> None:
        if now > self.updated_at:
            self.tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.rate)
            self.updated_at = now

    def try_take(self, now: float) -> bool:
        """Takes one token if one is available at `now`."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class RateLimits:
    """Token buckets by job type; job types without a limit are never held back."""

    limits: Mapping[str, float] = field(default_factory=dict)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def allow(self, job_type: str, now: float) -> bool:
        rate = self.limits.get(job_type)
        if rate is None:
            return True
        bucket = self._buckets.get(job_type)
        if bucket is None:
            bucket = self._buckets[job_type] = TokenBucket.full(rate, now)
        return bucket.try_take(now)


def parse_rate_limits(spec: str) -> dict[str, float]:
    """Parses `"http.request=50,demo.sleep=2.5"` into `{job type: jobs per second}`."""
    limits: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or not name or not rate > 0:
            raise InvalidRateLimits(
                f"rate limit {part!r} must be `<job type>=<jobs per second>` with a positive rate"
            )
        limits[name] = rate
    return limits
