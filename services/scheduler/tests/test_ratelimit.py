"""Token buckets that cap how many jobs of one type start per second."""

from __future__ import annotations

import pytest

from scheduler.domain.ratelimit import InvalidRateLimits, RateLimits, TokenBucket, parse_rate_limits

pytestmark = pytest.mark.unit


def test_a_full_bucket_allows_a_burst_of_one_second_then_refills_at_the_rate() -> None:
    bucket = TokenBucket.full(rate=4, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(5)] == [True] * 4 + [False]
    assert bucket.try_take(0.2) is False  # 0.8 of a token
    assert bucket.try_take(0.25) is True
    assert bucket.try_take(0.25) is False


def test_a_slow_rate_still_allows_one_job_and_never_stores_more_than_the_burst() -> None:
    bucket = TokenBucket.full(rate=0.5, now=0.0)
    assert bucket.try_take(0.0) is True
    assert bucket.try_take(1.0) is False
    assert bucket.try_take(2.0) is True
    assert bucket.try_take(1000.0) is True
    assert bucket.try_take(1000.0) is False


def test_over_any_window_dispatches_stay_within_burst_plus_rate_times_window() -> None:
    limits = RateLimits({"http.request": 10})
    taken = [t / 100 for t in range(0, 500) if limits.allow("http.request", t / 100)]
    for start in (0.0, 1.0, 2.5):
        window = [t for t in taken if start <= t < start + 2.0]
        assert len(window) <= 10 + 10 * 2.0
    assert len(taken) == pytest.approx(10 + 10 * 4.99, abs=1)


def test_job_types_without_a_limit_are_never_held_back() -> None:
    limits = RateLimits({"http.request": 1})
    assert all(limits.allow("demo.sleep", 0.0) for _ in range(1000))


def test_parse_rate_limits() -> None:
    assert parse_rate_limits("") == {}
    assert parse_rate_limits("http.request=50, demo.sleep=2.5") == {
        "http.request": 50.0,
        "demo.sleep": 2.5,
    }
    for bad in ("http.request", "=3", "a=0", "a=-1", "a=fast"):
        with pytest.raises(InvalidRateLimits):
            parse_rate_limits(bad)
