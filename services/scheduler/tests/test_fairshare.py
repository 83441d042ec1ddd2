"""Weighted fair sharing: shares follow weights, nobody starves, newcomers get no credit."""

from __future__ import annotations

from collections import Counter

import pytest

from scheduler.domain.fairshare import FairShare, weight_of

pytestmark = pytest.mark.unit


def run(fair: FairShare, weights: dict[str, float], slots: int) -> Counter[str]:
    given: Counter[str] = Counter()

    def take(batch_id: str) -> bool:
        given[batch_id] += 1
        return True

    fair.pick([(b, w, 10**9) for b, w in weights.items()], slots, take)
    return given


def test_shares_follow_weights() -> None:
    given = run(FairShare(), {"low": 2, "medium": 5, "high": 8}, 15_000)
    assert given == {"low": 2000, "medium": 5000, "high": 8000}


def test_a_low_batch_beside_many_high_ones_still_progresses() -> None:
    fair = FairShare()
    weights = {f"high-{i}": 10.0 for i in range(20)} | {"low": 1.0}
    total: Counter[str] = Counter()
    for _ in range(100):  # many small rounds, as the dispatcher does
        total += run(fair, weights, 7)
    assert total["low"] >= 3


def test_a_newcomer_starts_at_the_current_pass() -> None:
    fair = FairShare()
    run(fair, {"old": 5}, 1000)
    given = run(fair, {"old": 5, "new": 5}, 100)
    assert abs(given["old"] - given["new"]) <= 2


def test_room_and_exhaustion_are_respected() -> None:
    fair = FairShare()
    given: Counter[str] = Counter()
    stock = {"a": 3, "b": 100}

    def take(batch_id: str) -> bool:
        if stock[batch_id] == 0:
            return False
        stock[batch_id] -= 1
        given[batch_id] += 1
        return True

    fair.pick([("a", 5, 10), ("b", 5, 2)], 50, take)
    assert given == {"a": 3, "b": 2}


def test_aging_raises_weight() -> None:
    assert weight_of(2, 0) == 2
    assert weight_of(2, 600) == pytest.approx(4.0)
