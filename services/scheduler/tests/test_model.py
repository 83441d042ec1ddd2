"""The batch runtime's bookkeeping: jobs it never dispatched, the time it could not move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.vocabulary import BatchConfig
from scheduler.domain.model import PACE_WINDOW_S, BatchRuntime, InFlight

pytestmark = pytest.mark.unit


def _runtime(total: int, **config: object) -> BatchRuntime:
    b = BatchRuntime("b1", "t", "demo.sleep", BatchConfig.model_validate(config), 5, "running")
    b.total = total
    b.add_chunk(0, 0, total)
    return b


def test_skipping_counts_a_job_cancelled_on_its_own_as_cancelled_and_unskip_reopens_all() -> None:
    b = _runtime(10)
    assert [b.claim(0.0) for _ in range(3)] == [(0, 1, 0), (1, 1, 0), (2, 1, 0)]
    b.cancelled_indexes.add(5)
    b.schedule_retry(1, 2, 1, ready_at=100.0)
    assert b.skip_waiting() == 6  # 3, 4, 6, 7, 8, 9
    counts = b.counts()
    assert (counts.skipped, counts.cancelled, counts.pending, counts.retrying) == (6, 2, 0, 0)
    assert b.unskip() == 6
    counts = b.counts()
    assert (counts.skipped, counts.cancelled, counts.pending) == (0, 1, 7)
    claimed = [b.claim(0.0) for _ in range(6)]
    assert [c[0] for c in claimed if c] == [3, 4, 6, 7, 8, 9]
    assert b.counts().cancelled == 2  # job 5 once again, as dispatching passed it
    assert b.unskip() == 0


def test_a_sequential_config_runs_one_job_at_a_time_whatever_the_concurrency_says() -> None:
    config = BatchConfig.model_validate({"execution": "sequential", "max_concurrent_jobs": 8})
    assert config.max_concurrent_jobs == 1
    assert BatchConfig.model_validate(config.model_dump()).max_concurrent_jobs == 1
    b = _runtime(3, execution="sequential")
    assert b.room(0.0) == 1
    assert b.claim(0.0) == (0, 1, 0)
    b.in_flight["b1.0"] = object()  # type: ignore[assignment]
    assert (b.room(0.0), b.claim(0.0)) == (0, None)


def test_running_time_leaves_out_pauses_and_a_pause_before_the_start() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(s: float) -> datetime:
        return t0 + timedelta(seconds=s)

    b = _runtime(10)
    b.status = "queued"
    b.paused(t0)  # not started yet: nothing to leave out
    b.moving(at(50))
    b.started_at = at(60)
    assert b.active_s(at(70)) == 10
    b.paused(at(70))
    assert b.active_s(at(500)) == 10  # stands still while paused
    b.paused(at(80))  # a second pause request changes nothing
    b.moving(at(100))
    assert (b.inactive_s, b.active_s(at(110))) == (30, 20)
    b.paused(at(110))
    b.finished(at(120))  # cancelled while paused: the pause ends with it
    assert (b.inactive_s, b.inactive_since, b.active_s(at(9999))) == (40, None, 20)
    b.moving(at(200))  # retried: the rest since the finish is left out too
    assert (b.finished_at, b.inactive_s, b.active_s(at(205))) == (None, 120, 25)


def test_running_done_sums_the_running_jobs_reports_in_jobs() -> None:
    b = _runtime(10)
    for _ in range(3):
        b.claim(0.0)
    assert b.running_done() == 0.0  # claimed, not in flight: nothing reported
    b.in_flight = {
        f"b1.{i}": InFlight(f"b1.{i}", i, 1, 0, "running", 10.0, percent)
        for i, percent in enumerate((50.0, 150.0, None))
    }
    assert b.running_done() == 0.0  # no job reported a percent yet
    b.reports_progress = True
    assert b.running_done() == 1.5  # half of one, the whole of another (never more), none


def test_the_pace_window_begins_at_the_mark_before_the_latest() -> None:
    b = _runtime(1000)
    # snapshots every 10 s of active time, 3 jobs a second
    seen = [b.pace_window(float(s), 3.0 * s) for s in range(0, 100, 10)]
    assert PACE_WINDOW_S == 30.0
    # marks at 0, 30, 60, 90: none until the second; then the one before the latest
    assert seen[:3] == [None, None, None]
    assert seen[3:6] == [(0.0, 0.0)] * 3  # from 30 s on: the window starts at 0
    assert seen[6:9] == [(30.0, 90.0)] * 3
    assert seen[9] == (60.0, 180.0)  # always 30 to 60 s of active time behind
