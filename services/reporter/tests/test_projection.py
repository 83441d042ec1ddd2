"""Folding job events into views: newest version wins, failures are all kept, and any order
gives the same view; a rollback's compensation marks the view and a later run clears it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from contracts.codec import envelope_for
from contracts.envelope import Envelope
from contracts.events import (
    BatchPauseRequested,
    BatchProgress,
    BatchRollingBack,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobProgress,
    JobRetryScheduled,
    JobSkipped,
    JobStarted,
    RollbackProgress,
    RollbackStarted,
)
from contracts.vocabulary import ProgressCounts
from reporter.domain.projection import (
    JobEvent,
    Operators,
    batch_dynamic,
    fold_compensation,
    fold_job,
    fold_progress,
    log_entry,
    merge_operators,
    rollback_operators,
)

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(e: JobEvent, at: int) -> tuple[Envelope, JobEvent]:
    env = envelope_for(e, producer="t")
    return env.model_copy(update={"occurred_at": T0 + timedelta(seconds=at)}), e


def stamped(e: BatchRollingBack | RollbackStarted, at: int) -> Envelope:
    env = envelope_for(e, producer="t")
    return env.model_copy(update={"occurred_at": T0 + timedelta(seconds=at)})


def history() -> list[tuple[Envelope, JobEvent]]:
    j, b = "b.7", "b"
    return [
        ev(JobStarted(job_id=j, batch_id=b, attempt=1, executor_id="e", started_at=T0), 1),
        ev(
            JobFailed(
                job_id=j,
                batch_id=b,
                attempt=1,
                executor_id="e",
                started_at=T0,
                finished_at=T0,
                duration_ms=1,
                error_class="Flaky",
                error_message="x",
                retryable=True,
            ),
            2,
        ),
        ev(JobRetryScheduled(job_id=j, batch_id=b, attempt=1, retry_at=T0), 3),
        ev(JobStarted(job_id=j, batch_id=b, attempt=2, executor_id="f", started_at=T0), 4),
        ev(
            JobCompleted(
                job_id=j,
                batch_id=b,
                attempt=2,
                executor_id="f",
                started_at=T0,
                finished_at=T0,
                duration_ms=3,
                output={"n": 1},
            ),
            5,
        ),
    ]


def fold(items: list[tuple[Envelope, JobEvent]]) -> dict[str, object]:
    view = None
    for env, e in items:
        view = fold_job(view, env, e)
    assert view is not None
    return view


def test_in_order() -> None:
    view = fold(history())
    assert view["status"] == "completed"
    assert view["attempt"] == 2
    assert view["index"] == 7
    assert view["executor"] == "f"
    assert view["error_class"] is None
    assert view["errors"]["1"]["error_class"] == "Flaky"  # type: ignore[index]


def test_every_order_and_repeat_gives_the_same_view() -> None:
    expected = fold(history())
    for order in itertools.permutations(history()):
        assert fold(list(order)) == expected
    assert fold(history() + history()) == expected


def test_a_compensated_job_keeps_its_run_and_says_when_it_was_rolled_back() -> None:
    done = fold(history())
    undo = RollbackProgress(batch_id="b", rollback_id="rb_1", job_id="b.7", done=1, total=1)
    at = T0 + timedelta(seconds=60)
    undo_env = envelope_for(undo, producer="t").model_copy(update={"occurred_at": at})
    undone = fold_compensation(done, undo_env, undo)
    assert undone is not None
    assert undone["status"] == "completed"
    assert undone["output"] == {"n": 1}
    assert undone["rolled_back_at"] == at
    assert undone["rollback_id"] == "rb_1"
    # a replayed event of the run it undid changes nothing
    for env, e in history():
        assert fold_job(undone, env, e)["rolled_back_at"] == at
    # a new run of the job is no longer rolled back
    again = JobStarted(job_id="b.7", batch_id="b", attempt=3, executor_id="e", started_at=at)
    rerun = fold_job(undone, *ev(again, 70))
    assert rerun["status"] == "running"
    assert "rolled_back_at" not in rerun
    # a job without a view (never projected) gets none from its compensation
    assert fold_compensation(None, undo_env, undo) is None


def test_a_job_cancelled_while_waiting_for_its_retry_ends_cancelled_in_any_order() -> None:
    j, b = "b.7", "b"
    events = [
        *history()[:3],
        ev(JobCancelled(job_id=j, batch_id=b, attempt=1, reason="batch cancelled"), 6),
    ]
    views = [fold(list(order)) for order in itertools.permutations(events)]
    assert all(v == views[0] for v in views)
    assert views[0]["status"] == "cancelled"
    assert views[0]["error_message"] == "batch cancelled"
    assert views[0]["errors"]["1"]["error_class"] == "Flaky"  # type: ignore[index]


def test_a_job_its_job_type_skipped_says_why_in_any_order() -> None:
    j, b = "b.7", "b"
    skipped = JobSkipped(
        job_id=j,
        batch_id=b,
        attempt=2,
        executor_id="f",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        duration_ms=1000,
        reason="already extracted",
    )
    events = [*history()[:4], ev(skipped, 5)]
    views = [fold(list(order)) for order in itertools.permutations(events)]
    assert all(v == views[0] for v in views)
    view = views[0]
    assert (view["status"], view["skip_reason"], view["attempt"]) == (
        "skipped",
        "already extracted",
        2,
    )
    assert view["errors"]["1"]["error_class"] == "Flaky"  # type: ignore[index]
    assert view["attempts"]["2"]["status"] == "skipped"  # type: ignore[index]
    # a later attempt's view says nothing of the skip
    assert fold(history())["skip_reason"] is None


def test_every_attempt_is_recorded_with_its_error() -> None:
    attempts = fold(history())["attempts"]
    assert attempts == {
        "1": {
            "attempt": 1,
            "status": "failed",
            "executor": "e",
            "started_at": T0,
            "finished_at": T0,
            "error": {"class": "Flaky", "message": "x", "retryable": True},
        },
        "2": {
            "attempt": 2,
            "status": "completed",
            "executor": "f",
            "started_at": T0,
            "finished_at": T0,
            "error": None,
        },
    }
    running = fold(history()[3:4])["attempts"]
    assert running == {"2": {"attempt": 2, "status": "running", "executor": "f", "started_at": T0}}


def test_the_batch_log_keeps_commands_and_state_changes_but_not_progress() -> None:
    pause = BatchPauseRequested(batch_id="b", requested_by="ann")
    entry = log_entry(envelope_for(pause, producer="batch-api"), pause)
    assert entry is not None
    assert (entry["type"], entry["requested_by"], entry["producer"]) == (
        "BatchPauseRequested",
        "ann",
        "batch-api",
    )
    env = envelope_for(pause, producer="batch-api")
    stamped = log_entry(env, pause)
    assert stamped is not None
    assert stamped["at_us"] == env.occurred_at.microsecond  # the store keeps milliseconds only
    progress = BatchProgress(batch_id="b", status="running", counts=ProgressCounts(total=1))
    assert log_entry(envelope_for(progress, producer="scheduler"), progress) is None
    started = JobStarted(
        job_id="b.0", batch_id="b", attempt=1, executor_id="e", started_at=datetime.now(UTC)
    )
    assert log_entry(envelope_for(started, producer="executor"), started) is None
    undone = RollbackProgress(batch_id="b", rollback_id="r", job_id="b.0", done=1, total=9)
    assert log_entry(envelope_for(undone, producer="rollback"), undone) is None


def test_a_rollback_starts_in_the_view_when_the_scheduler_says_rolling_back() -> None:
    """The batch's `BatchRollingBack` (at the request) records the start, the rollback
    service's `RollbackStarted` (after planning) the total: in either order, the earliest
    start and the total."""
    counts = ProgressCounts(total=3, completed=3)
    shown = BatchRollingBack(batch_id="b", status="rolling_back", counts=counts, rollback_id="r")
    started = RollbackStarted(batch_id="b", rollback_id="r", planned_jobs=3)
    events = [(stamped(shown, 1), shown), (stamped(started, 4), started)]
    for order in (events, events[::-1]):
        merged: Operators = {}
        for env, e in order:
            merge_operators(merged, rollback_operators(env, e))
        assert merged == {
            "$min": {"rollbacks.r.started_at": T0 + timedelta(seconds=1)},
            "$set": {"rollbacks.r.total": 3},
        }
    unnamed = BatchRollingBack(batch_id="b", status="rolling_back", counts=counts)
    assert rollback_operators(stamped(unnamed, 1), unnamed) == {}  # an older scheduler's


def reported(
    percent: float, message: str, at: int, attempt: int = 2
) -> tuple[Envelope, JobProgress]:
    e = JobProgress(
        job_id="b.7",
        batch_id="b",
        attempt=attempt,
        executor_id="f",
        percent=percent,
        message=message,
    )
    env = envelope_for(e, producer="t")
    return env.model_copy(update={"occurred_at": T0 + timedelta(seconds=at)}), e


def fold_all(items: list[tuple[Envelope, JobEvent | JobProgress]]) -> dict[str, object] | None:
    view: dict[str, object] | None = None
    for env, e in items:
        if isinstance(e, JobProgress):
            view = fold_progress(view, env, e)
            continue
        view = fold_job(view, env, e)
    return view


def test_a_running_job_shows_its_latest_progress_in_any_order() -> None:
    started = history()[:4]  # attempt 1 failed and was retried; attempt 2 started at 4 s
    reports = [reported(25, "step 1 of 4", 6), reported(50, "step 2 of 4", 7)]
    stale = reported(90, "the failed attempt", 3, attempt=1)
    views = [fold_all(list(order)) for order in itertools.permutations([*started, *reports, stale])]
    assert all(v == views[0] for v in views)
    view = views[0]
    assert view is not None
    assert view["status"] == "running"
    assert view["attempt"] == 2
    assert view["started_at"] == T0, "a report before JobStarted leaves it to set started_at"
    assert view["progress"] == {
        "percent": 50,
        "message": "step 2 of 4",
        "at": T0 + timedelta(seconds=7),
    }


def test_an_ended_attempt_shows_no_progress_in_any_order() -> None:
    events = [*history(), reported(50, "step 2 of 4", 4)]
    expected = fold(history())
    for order in itertools.permutations(events):
        assert fold_all(list(order)) == expected
    assert "progress" not in expected


def test_a_crashed_attempt_keeps_its_stack_trace_with_its_error() -> None:
    env, failed = history()[1]
    assert isinstance(failed, JobFailed)
    crashed = failed.model_copy(update={"traceback": "Traceback ...\nKeyError: 'k'"})
    view = fold_job(None, env, crashed)
    assert view["errors"]["1"]["traceback"] == "Traceback ...\nKeyError: 'k'"
    assert "traceback" not in fold_job(None, env, failed)["errors"]["1"]


def test_a_failure_keeps_its_severity_given_or_as_an_older_event_implies() -> None:
    env, failed = history()[1]
    assert isinstance(failed, JobFailed)
    assert fold_job(None, env, failed)["errors"]["1"]["severity"] == "medium"  # retryable
    crashed = failed.model_copy(update={"traceback": "Traceback ...", "retryable": False})
    assert fold_job(None, env, crashed)["errors"]["1"]["severity"] == "critical"
    given = failed.model_copy(update={"severity": "low"})
    assert fold_job(None, env, given)["errors"]["1"]["severity"] == "low"


def test_an_attempt_parked_for_a_decision_says_so_and_an_ordinary_failure_does_not() -> None:
    env, failed = history()[1]
    assert isinstance(failed, JobFailed)
    parked = failed.model_copy(update={"awaiting_decision": True, "retryable": False})
    assert fold_job(None, env, parked)["errors"]["1"]["awaiting_decision"] is True
    assert "awaiting_decision" not in fold_job(None, env, failed)["errors"]["1"]


def test_a_completed_job_keeps_its_warnings_and_a_later_attempt_only_its_own() -> None:
    env, completed = history()[4]
    assert isinstance(completed, JobCompleted)
    warned = completed.model_copy(update={"warnings": ["odd", "odder"]})
    assert fold_job(None, env, warned)["warnings"] == ["odd", "odder"]
    assert fold_job(None, env, completed)["warnings"] is None


def test_a_batch_view_keeps_the_time_its_batch_could_not_move() -> None:
    paused = BatchProgress(
        batch_id="b",
        status="paused",
        counts=ProgressCounts(total=3),
        started_at=T0,
        inactive_s=12.5,
        inactive_since=T0 + timedelta(seconds=40),
        window_active_s=0.0,
        window_done=1.5,
    )
    env = envelope_for(paused, producer="scheduler", seq=3)
    fields = batch_dynamic(env, paused)
    assert (fields["inactive_s"], fields["inactive_since"]) == (12.5, T0 + timedelta(seconds=40))
    assert (fields["window_active_s"], fields["window_done"]) == (0.0, 1.5)  # the ETA's pace
    assert fields["skipped_from"] is None  # none skipped: said
    older = env.model_copy(update={"schema_version": 1})  # a scheduler from before
    assert "skipped_from" not in batch_dynamic(older, paused)  # not said: readers guess
