"""Predicting a batch's finish against its deadline."""

from __future__ import annotations

import pytest

from scheduler.domain.deadline import MAX_BOOST, judge

pytestmark = pytest.mark.unit


def test_plenty_of_time_changes_nothing() -> None:
    view = judge(now=100, deadline=1000, remaining=100, finished=100, elapsed_s=100)
    assert (view.boost, view.at_risk, view.missed) == (1.0, False, False)
    assert view.predicted_finish == 200


def test_the_boost_rises_as_the_time_needed_nears_the_time_left() -> None:
    # 1 job/s; 900 s left; needing 450, 675 and 900 s.
    boosts = [
        judge(now=100, deadline=1000, remaining=r, finished=100, elapsed_s=100).boost
        for r in (450, 675, 900)
    ]
    assert boosts == [1.0, pytest.approx((1 + MAX_BOOST) / 2), MAX_BOOST]


def test_at_risk_when_the_prediction_passes_the_deadline() -> None:
    view = judge(now=100, deadline=1000, remaining=1000, finished=100, elapsed_s=100)
    assert view.at_risk
    assert not view.missed
    assert view.boost == MAX_BOOST
    assert view.predicted_finish == 1100


def test_missed_once_the_deadline_has_passed_with_work_left() -> None:
    view = judge(now=1001, deadline=1000, remaining=1, finished=100, elapsed_s=100)
    assert view.missed
    assert view.at_risk
    assert judge(now=1001, deadline=1000, remaining=0, finished=100, elapsed_s=100).missed is False


def test_no_throughput_yet_means_no_prediction() -> None:
    view = judge(now=100, deadline=1000, remaining=100, finished=0, elapsed_s=5)
    assert (view.boost, view.at_risk, view.predicted_finish) == (1.0, False, None)
