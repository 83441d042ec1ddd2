"""Retry timing: exponential backoff with full jitter, capped."""

from __future__ import annotations

import random

from contracts.vocabulary import RetryPolicy


def backoff_s(policy: RetryPolicy, failures: int, rng: random.Random | None = None) -> float:
    """Delay before the attempt after `failures` failures (failures >= 1). The ceiling grows
    as initial * multiplier^(failures-1), capped at backoff_max_s; the delay is drawn between
    half the ceiling and the ceiling, so retries of many jobs do not arrive together."""
    ceiling = min(
        policy.backoff_max_s, policy.backoff_initial_s * policy.multiplier ** max(failures - 1, 0)
    )
    r = (rng or random).random()
    return ceiling * (0.5 + 0.5 * r)


def should_retry(policy: RetryPolicy, failures: int, retryable: bool) -> bool:
    return retryable and failures < policy.max_attempts
