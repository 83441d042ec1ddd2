"""Progress shown to people: percent, throughput, elapsed and ETA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_api.domain.progress import latest_rollback, progress_of

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_running_batch() -> None:
    counts = {"total": 100, "completed": 30, "failed": 10, "running": 5, "pending": 55}
    p = progress_of(counts, {"started_at": T0}, T0 + timedelta(seconds=20))
    assert p["awaiting_decision"] == 0  # a scheduler from before v3 does not say
    assert p["percent"] == 40.0
    assert p["throughput_per_s"] == 2.0
    assert p["elapsed_s"] == 20.0
    assert p["eta_s"] == 30.0


def test_jobs_that_never_ran_are_done_but_not_in_the_rate() -> None:
    ended = T0 + timedelta(seconds=10)
    times = {"started_at": T0, "finished_at": ended}
    # cancelled after 100 jobs in 10 s: it ran 10 a second, and it is wholly done
    cancelled = progress_of({"total": 10_000, "completed": 100, "cancelled": 9_900}, times, ended)
    assert (cancelled["percent"], cancelled["throughput_per_s"]) == (100.0, 10.0)
    # stopped at a failure: jobs 50 on were skipped by the stop; 5 its job type skipped ran
    stopped = {"total": 1_000, "completed": 45, "failed": 1, "skipped": 954}
    p = progress_of(stopped, {**times, "skipped_from": 50}, ended)
    assert p["throughput_per_s"] == 5.0  # 45 + 1 + the 4 of the skipped that ran
    assert progress_of(stopped, times, ended)["throughput_per_s"] == 100.0  # not said: all
    # a job cancelled before it ran leaves the ETA at the pace of those that did
    running = {"total": 100, "completed": 20, "cancelled": 20, "pending": 60}
    assert progress_of(running, {"started_at": T0}, ended, "running")["eta_s"] == 30.0


def test_a_paused_batch_has_no_eta() -> None:
    counts = {"total": 100, "completed": 30, "pending": 70}
    now = T0 + timedelta(seconds=20)
    assert progress_of(counts, {"started_at": T0}, now, "paused")["eta_s"] is None
    assert progress_of(counts, {"started_at": T0}, now, "running")["eta_s"] == 46.7


def test_pauses_are_not_in_the_rate_nor_the_eta() -> None:
    # 100 s since it started, 60 of them paused: 40 jobs in 40 s of running
    counts = {"total": 100, "completed": 40, "pending": 60}
    p = progress_of(
        counts, {"started_at": T0, "inactive_s": 60}, T0 + timedelta(seconds=100), "running"
    )
    assert p["elapsed_s"] == 100.0
    assert p["active_s"] == 40.0
    assert p["throughput_per_s"] == 1.0
    assert p["eta_s"] == 60.0  # not 150 s, as at 40 jobs per 100 s


def test_a_pause_under_way_stops_the_running_time() -> None:
    counts = {"total": 100, "completed": 40, "pending": 60}
    paused_at = T0 + timedelta(seconds=40)
    for now in (T0 + timedelta(seconds=50), T0 + timedelta(seconds=500)):
        p = progress_of(counts, {"started_at": T0, "inactive_since": paused_at}, now, "paused")
        assert p["active_s"] == 40.0
        assert p["throughput_per_s"] == 1.0
        assert p["eta_s"] is None


def test_a_finished_batch_counts_its_pauses_until_the_finish() -> None:
    done = T0 + timedelta(seconds=30)
    p = progress_of(
        {"total": 10, "completed": 10},
        {"started_at": T0, "finished_at": done, "inactive_s": 10},
        T0 + timedelta(hours=2),
    )
    assert (p["elapsed_s"], p["active_s"], p["throughput_per_s"]) == (30.0, 20.0, 0.5)


def test_running_jobs_progress_counts_in_the_eta_before_any_job_ended() -> None:
    # four long jobs, two running for 300 s and half way: two more such runs to go
    counts = {"total": 4, "running": 2, "pending": 2}
    now = T0 + timedelta(seconds=300)
    p = progress_of(counts, {"started_at": T0, "running_done": 1.0}, now, "running")
    assert (p["percent"], p["throughput_per_s"], p["eta_s"]) == (0.0, 0.0, 900.0)
    assert "eta_s" not in progress_of(
        counts, {"started_at": T0}, now, "running"
    )  # no report: unknown
    # with jobs ended too, both count; a report cannot make more than the batch
    p = progress_of(
        {"total": 4, "completed": 2, "running": 2}, {"started_at": T0, "running_done": 1}, now
    )
    assert p["eta_s"] == 100.0
    p = progress_of(
        {"total": 4, "completed": 3, "running": 1}, {"started_at": T0, "running_done": 5}, now
    )
    assert p["eta_s"] == 0.0


def test_finished_batch_has_no_eta_left() -> None:
    p = progress_of(
        {"total": 10, "completed": 10},
        {"started_at": T0, "finished_at": T0 + timedelta(seconds=5)},
        T0,
    )
    assert p["percent"] == 100.0
    assert p["eta_s"] == 0.0
    assert p["elapsed_s"] == 5.0


def test_the_eta_goes_at_the_recent_pace_once_the_scheduler_marks_a_window() -> None:
    # 600 jobs in the first 300 s at 2/s, then concurrency raised: 200 more in the last 40 s
    counts = {"total": 2000, "completed": 800, "running": 10}
    now = T0 + timedelta(seconds=340)
    whole = progress_of(counts, {"started_at": T0}, now, "running")
    assert (whole["throughput_per_s"], whole["eta_s"]) == (2.35, 510.0)  # the old pace
    window = {"started_at": T0, "window_active_s": 300, "window_done": 600}
    p = progress_of(counts, window, now, "running")
    assert p["throughput_per_s"] == 2.35  # still the whole run's mean
    assert (p["pace_per_s"], p["eta_s"]) == (5.0, 240.0)  # 1200 left at 5/s


def test_a_stall_slows_the_recent_pace_as_the_time_passes() -> None:
    counts = {"total": 1000, "completed": 500}
    window = {"started_at": T0, "window_active_s": 60, "window_done": 300}
    at = [progress_of(counts, window, T0 + timedelta(seconds=s), "running") for s in (100, 260)]
    assert [p["pace_per_s"] for p in at] == [5.0, 1.0]  # 200 jobs over 40 s, then over 200 s
    assert [p["eta_s"] for p in at] == [100.0, 500.0]


def test_without_movement_in_its_window_the_eta_goes_at_the_whole_runs_pace() -> None:
    counts = {"total": 100, "completed": 50}
    window = {"started_at": T0, "window_active_s": 40, "window_done": 50}
    p = progress_of(counts, window, T0 + timedelta(seconds=100), "running")
    assert (p["pace_per_s"], p["eta_s"]) == (None, 100.0)
    finished = {**window, "finished_at": T0 + timedelta(seconds=100)}
    done = progress_of({"total": 100, "completed": 100}, finished, T0 + timedelta(seconds=200))
    assert (done["pace_per_s"], done["eta_s"]) == (None, 0.0)


def test_not_started_and_empty() -> None:
    p = progress_of({"total": 0}, {}, T0)
    assert p["percent"] == 0.0
    assert "eta_s" not in p


def test_the_latest_started_rollback_is_shown_with_its_eta() -> None:
    recorded = {
        "r_old": {
            "started_at": T0,
            "total": 10,
            "done": 3,
            "status": "rollback_failed",
            "reason": "store down",
            "finished_at": T0 + timedelta(seconds=2),
        },
        "r_new": {"started_at": T0 + timedelta(seconds=60), "total": 400, "done": 100},
        "r_dry": {
            "status": "rollback_failed",
            "reason": "refused dry run",
            "finished_at": T0 + timedelta(seconds=90),
        },  # no start: a dry run's
    }
    shown = latest_rollback(recorded, T0 + timedelta(seconds=70))
    assert shown is not None
    assert (shown["rollback_id"], shown["status"]) == ("r_new", "rolling_back")
    assert (shown["done"], shown["total"], shown["percent"]) == (100, 400, 25.0)
    assert (shown["throughput_per_s"], shown["eta_s"]) == (10.0, 30.0)
    old = latest_rollback({"r_old": recorded["r_old"]}, T0 + timedelta(seconds=70))
    assert old is not None
    assert (old["status"], old["reason"], old["throughput_per_s"]) == (
        "rollback_failed",
        "store down",
        1.5,
    )
    assert "eta_s" not in old
    assert latest_rollback({"r_dry": recorded["r_dry"]}, T0) is None
    assert latest_rollback(None, T0) is None


def test_records_that_are_not_a_rollbacks_are_skipped_not_shown_or_failed_on() -> None:
    """A check kept in the batch view by an interim reporter (before checks had their own
    documents) was later than the batch's rollback, and its `refused` status failed every
    listing that held the batch (HTTP 500)."""
    recorded = {
        "r_real": {
            "started_at": T0,
            "finished_at": T0 + timedelta(seconds=4),
            "status": "rolled_back",
            "done": 8,
            "total": 8,
        },
        "c_refused": {
            "dry_run": True,
            "started_at": T0 + timedelta(seconds=60),
            "finished_at": T0 + timedelta(seconds=60),
            "status": "refused",
            "reason": "1 job(s) cannot be restored",
        },
        "c_clear": {"dry_run": True, "started_at": T0 + timedelta(seconds=70), "status": "clear"},
        "x_odd": {"started_at": T0 + timedelta(seconds=80), "status": "exploded"},
        "x_text": {"started_at": "yesterday"},
    }
    shown = latest_rollback(recorded, T0 + timedelta(seconds=90))
    assert shown is not None
    assert (shown["rollback_id"], shown["status"], shown["done"]) == ("r_real", "rolled_back", 8)


def test_a_rollback_not_planned_yet_is_shown_planning() -> None:
    """The scheduler's `BatchRollingBack` records its start before the rollback service's
    `RollbackStarted` records its total."""
    requested = {"r_1": {"started_at": T0}}
    shown = latest_rollback(requested, T0 + timedelta(seconds=3))
    assert shown is not None
    assert (shown["status"], shown["planning"], shown["total"]) == ("rolling_back", True, 0)
    assert "eta_s" not in shown
    planned = latest_rollback({"r_1": {"started_at": T0, "total": 0}}, T0)
    assert planned is not None
    assert planned["planning"] is False  # planned, with nothing to restore
    refused = {"r_1": {"started_at": T0, "status": "rollback_failed", "reason": "corrupt"}}
    ended = latest_rollback(refused, T0)
    assert ended is not None
    assert (ended["status"], ended["planning"]) == ("rollback_failed", False)
