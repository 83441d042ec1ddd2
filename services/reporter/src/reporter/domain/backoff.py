"""When a failed webhook delivery is tried again, and which failures are worth retrying."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 6
    initial_s: float = 1.0
    max_s: float = 60.0

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based): doubling, capped."""
        return float(min(self.max_s, self.initial_s * 2 ** (attempt - 1)))


def retryable_status(status: int) -> bool:
    """5xx, 429 Too Many Requests and 408 Request Timeout may pass; other statuses will not."""
    return status >= 500 or status in (408, 429)
