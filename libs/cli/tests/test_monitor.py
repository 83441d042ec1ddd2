"""The monitor's board: what stream events and GET answers do to each watched batch, when it
counts as finished, and the exit code at the end."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest

from batchyard_cli.client import BatchyardClient
from batchyard_cli.exit_codes import ExitCode
from batchyard_cli.monitor import Board, Change, Watcher
from batchyard_cli.monitor_view import _bar, _errors, _fields, _plain, summary
from batchyard_cli.resources import Batch
from batchyard_cli.sse import ServerEvent

pytestmark = pytest.mark.unit


def batch(batch_id: str, status: str = "running", seq: int | None = None, **progress: Any) -> Batch:
    counts = {"total": 10, "completed": 0, "failed": 0, "percent": 0.0, **progress}
    found: dict[str, Any] = {
        "id": batch_id,
        "name": f"name-{batch_id}",
        "status": status,
        "progress": counts,
    }
    if seq is not None:
        found["seq"] = seq
    return found  # type: ignore[return-value]


def event(name: str, **data: Any) -> ServerEvent:
    return ServerEvent(name, json.dumps(data) if data else "")


def test_progress_events_update_counts_and_status() -> None:
    board = Board.of([batch("b1")])
    change = board.apply_event(
        event("progress", status="running", completed=4, failed=1, percent=50.0), "b1"
    )
    assert change is not None
    assert change.kind == "progress"
    assert not change.status_changed
    assert board.tracked["b1"].progress["completed"] == 4
    # The same event with the progress nested, and a batch id in the data (global stream).
    board.apply_event(event("progress", batch_id="b1", progress={"completed": 6}))
    assert board.tracked["b1"].progress["completed"] == 6


def test_events_of_unwatched_batches_are_ignored() -> None:
    board = Board.of([batch("b1")])
    assert board.apply_event(event("progress", batch_id="b9", completed=3)) is None
    assert board.apply_event(event("job_failed", job_id="b9.1", error="x")) is None


def test_status_and_job_failures() -> None:
    board = Board.of([batch("b1")])
    change = board.apply_event(event("status", batch_id="b1", status="paused", reason="asked"))
    assert change is not None
    assert change.status_changed
    assert board.tracked["b1"].reason == "asked"
    failed = board.apply_event(
        event("job_failed", job_id="b1.3", error={"class": "DemoFailure", "message": "boom"})
    )
    assert failed is not None
    assert failed.message == "b1.3 DemoFailure: boom"
    assert board.tracked["b1"].failures_seen == 1
    assert not board.all_finished()


def test_a_failed_attempt_reads_as_an_error_as_retryable_or_as_waiting_for_a_decision() -> None:
    board = Board.of([batch("b1")])
    error = {"class": "DemoFailure", "message": "boom", "retryable": False}
    failed = board.apply_event(event("job_failed", batch_id="b1", job_id="b1.1", error=error))
    retry = {**error, "retryable": True}
    flaky = board.apply_event(event("job_failed", batch_id="b1", job_id="b1.2", error=retry))
    parked = board.apply_event(
        event(
            "job_failed",
            batch_id="b1",
            job_id="b1.3",
            awaiting_decision=True,
            error={"class": "AwaitingDecision", "message": "conflict over Welcome"},
        )
    )
    assert failed is not None
    assert flaky is not None
    assert parked is not None
    assert (failed.failure, failed.message) == ("failed", "b1.1 DemoFailure: boom")
    assert (flaky.failure, flaky.message) == ("retryable", "b1.2 DemoFailure: boom (retryable)")
    assert parked.failure == "awaiting"
    assert parked.message == "b1.3: conflict over Welcome"


def test_a_bar_counts_jobs_awaiting_a_decision_apart_from_the_failed() -> None:
    board = Board.of([batch("b1", failed=3, awaiting_decision=2, retrying=1)])
    fields = _fields(board.tracked["b1"])
    assert (fields["failed"], fields["awaiting"], fields["retrying"]) == (1, 2, 1)
    text = str(_errors(cast(Any, SimpleNamespace(fields=fields))))
    assert text == "1 failed 1 retrying 2 awaiting"
    only_parked = _fields(Board.of([batch("b2", failed=2, awaiting_decision=2)]).tracked["b2"])
    assert str(_errors(cast(Any, SimpleNamespace(fields=only_parked)))) == "2 awaiting"
    assert _bar(cast(Any, SimpleNamespace(fields=only_parked))).complete_style == "yellow"
    finished = Board.of([batch("b2", "completed_with_errors", failed=2, awaiting_decision=2)])
    assert "2 job(s) of b2 await a decision: batchyard show b2" in str(summary(finished))


def test_end_finishes_a_batch_even_before_the_read_model_catches_up() -> None:
    board = Board.of([batch("b1"), batch("b2")])
    board.apply_event(event("progress", batch_id="b1", status="completed", completed=12), "b1")
    board.apply_event(event("end", status="completed"), "b1")
    assert board.unfinished == ["b2"]
    # A GET that still says "running" undoes neither the stream's end nor its final counts.
    board.apply_batch(batch("b1", "running", completed=10))
    assert board.tracked["b1"].status == "completed"
    assert board.tracked["b1"].progress["completed"] == 12
    board.apply_batch(batch("b1", "completed", completed=11))  # final, but an older count
    assert board.tracked["b1"].progress["completed"] == 12
    board.apply_batch(batch("b2", "completed", completed=10))
    assert board.all_finished()
    assert board.exit_code() == ExitCode.OK


def test_a_final_progress_frame_is_not_undone_by_a_lagging_read_before_the_end() -> None:
    # The CLI re-reads a batch as soon as a frame says it finished; the read model may still
    # show it running with one job fewer (seen in CI: "29/30 completed").
    board = Board.of([batch("b1", total=30)])
    board.apply_event(event("progress", status="completed", completed=30), "b1")
    board.apply_batch(batch("b1", "running", total=30, completed=29))
    assert board.tracked["b1"].status == "completed"
    assert board.tracked["b1"].progress["completed"] == 30
    board.apply_event(event("end", status="completed"), "b1")
    assert board.all_finished()


def test_the_end_of_a_stream_opened_on_an_older_read_does_not_end_a_batch_that_moved_on() -> None:
    """A rollback asked for just before: the GET already shows it `rolling_back`, the stream
    opens on a read model still at `completed` and ends at once (seen in a CLI e2e run: the
    monitor ended with the batch `completed`)."""
    board = Board.of([batch("b1", "rolling_back", seq=4)])
    board.apply_event(event("status", status="completed", seq=3), "b1")
    assert board.apply_event(event("end", status="completed", seq=3), "b1") is None
    assert (board.tracked["b1"].status, board.unfinished) == ("rolling_back", ["b1"])
    board.apply_event(event("end", status="rolled_back", seq=5), "b1")
    assert board.all_finished()


def test_an_answer_or_frame_older_than_what_is_shown_changes_nothing() -> None:
    """The stream's first frame is read when it opens, the GET after it; the read model can
    also be behind the live feed. Either way a lower `seq` is older: counts never go back."""
    board = Board.of([batch("b1", total=30, completed=5, seq=40)])
    board.apply_batch(batch("b1", "paused", total=30, completed=5, seq=40))
    assert board.apply_event(event("progress", status="running", completed=3, seq=31), "b1") is None
    assert board.apply_event(event("status", status="running", seq=31), "b1") is None
    assert (board.tracked["b1"].status, board.tracked["b1"].progress["completed"]) == ("paused", 5)
    board.apply_event(event("progress", status="paused", completed=9, seq=44), "b1")
    board.apply_event(event("status", status="paused", reason="asked", seq=44), "b1")
    board.apply_batch(batch("b1", "running", total=30, completed=7, seq=42))
    assert (board.tracked["b1"].status, board.tracked["b1"].progress["completed"]) == ("paused", 9)
    assert board.tracked["b1"].reason == "asked"
    board.apply_batch(batch("b1", "running", total=30, completed=12, seq=47))
    assert (board.tracked["b1"].status, board.tracked["b1"].progress["completed"]) == (
        "running",
        12,
    )


def test_a_rollback_shows_its_own_progress_and_succeeds_when_rolled_back() -> None:
    start = batch("b1", "completed", total=300, completed=300, seq=9)
    board = Board.of([start], restarting=["b1"], succeeded=frozenset({"rolled_back"}))
    assert not board.all_finished()  # the rollback was just asked for: "completed" is stale
    r = {"rollback_id": "r1", "status": "rolling_back", "done": 0, "total": 300, "percent": 0.0}
    board.apply_batch(
        {**batch("b1", "rolling_back", total=300, completed=300, seq=10), "rollback": r}
    )
    tracked = board.tracked["b1"]
    assert tracked.rolling_back == r
    change = board.apply_event(event("rollback", batch_id="b1", **{**r, "done": 120}), "b1")
    assert change is not None
    assert change.kind == "rollback"
    assert tracked.rolling_back is not None
    assert tracked.rolling_back["done"] == 120
    # a read model behind the stream does not take the count back
    board.apply_batch(
        {**batch("b1", "rolling_back", total=300, completed=300, seq=10), "rollback": r}
    )
    assert tracked.rolling_back["done"] == 120
    done = {**r, "status": "rolled_back", "done": 300, "percent": 100.0}
    board.apply_event(event("progress", status="rolled_back", completed=300, seq=11), "b1")
    board.apply_event(event("rollback", batch_id="b1", **done), "b1")
    board.apply_event(event("end", status="rolled_back"), "b1")
    assert board.all_finished()
    assert board.exit_code() == ExitCode.OK
    failed = Board.of([batch("b2", "rollback_failed")], succeeded=frozenset({"rolled_back"}))
    assert failed.exit_code() == ExitCode.UNSUCCESSFUL
    assert Board.of([batch("b3", "rolled_back")]).exit_code() == ExitCode.UNSUCCESSFUL


class Reads:
    """A client whose `GET` answers come from a list (the last one repeats)."""

    def __init__(self, answers: list[Batch]) -> None:
        self.answers = answers

    def get_batch(self, batch_id: str) -> Batch:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Quiet:
    def start(self, board: Board) -> None: ...
    def update(self, board: Board, change: Change) -> None: ...
    def note(self, message: str) -> None: ...
    def stop(self, board: Board) -> None: ...


def test_a_batch_ended_by_a_rollback_is_read_until_its_rollback_shows_the_end() -> None:
    """The batch's end and its rollback's last count reach the read model separately: the
    answer that says rolled_back can still show the rollback at 5,100 of 5,121 (seen)."""
    r = {"rollback_id": "r1", "status": "rolling_back", "done": 5100, "total": 5121}
    ended = {**r, "status": "rolled_back", "done": 5121}
    answers: list[Batch] = [
        {**batch("b1", "rolled_back", seq=12), "rollback": r},  # type: ignore[typeddict-item]
        {**batch("b1", "rolled_back", seq=12), "rollback": r},  # type: ignore[typeddict-item]
        {**batch("b1", "rolled_back", seq=12), "rollback": ended},  # type: ignore[typeddict-item]
    ]
    board = Board.of([{**batch("b1", "rolling_back", seq=11), "rollback": r}])  # type: ignore[typeddict-item]
    naps: list[float] = []
    watcher = Watcher(
        cast(BatchyardClient, Reads(answers)), board, Quiet(), use_stream=False, sleep=naps.append
    )
    assert watcher.run() == ExitCode.UNSUCCESSFUL  # rolled_back is not "completed"
    assert board.tracked["b1"].rolling_back == ended
    assert len(naps) == 2


@pytest.mark.parametrize(
    ("finals", "code"),
    [
        (["completed", "completed"], ExitCode.OK),
        (["completed", "completed_with_errors"], ExitCode.UNSUCCESSFUL),
        (["cancelled"], ExitCode.UNSUCCESSFUL),
        (["failed"], ExitCode.UNSUCCESSFUL),
    ],
)
def test_exit_code_follows_the_final_statuses(finals: list[str], code: ExitCode) -> None:
    board = Board.of([batch(f"b{i}", status) for i, status in enumerate(finals)])
    assert board.all_finished()
    assert board.exit_code() == code


def test_a_non_final_status_is_not_finished() -> None:
    board = Board.of([batch("b1", "paused"), batch("b2", "queued")])
    assert board.unfinished == ["b1", "b2"]


def test_a_restarted_batch_is_not_finished_by_its_stale_final_status() -> None:
    before = {**batch("b1", "completed_with_errors"), "finished_at": "t1"}
    board = Board.of([before], restarting=["b1"])  # type: ignore[list-item]
    assert board.unfinished == ["b1"]
    assert board.apply_event(event("end", status="completed_with_errors"), "b1") is None
    board.apply_batch(before)  # type: ignore[arg-type]
    assert board.unfinished == ["b1"]
    # The retry runs (a non-final status seen), then ends for real.
    board.apply_event(event("status", status="retrying"), "b1")
    assert board.unfinished == ["b1"]
    board.apply_batch({**batch("b1", "completed"), "finished_at": "t2"})  # type: ignore[arg-type]
    assert board.all_finished()
    assert board.exit_code() == ExitCode.OK


def test_a_restart_too_quick_to_see_still_ends_by_its_new_finish_time() -> None:
    before = {**batch("b1", "completed_with_errors"), "finished_at": "t1"}
    board = Board.of([before], restarting=["b1"])  # type: ignore[list-item]
    board.apply_batch({**before, "finished_at": "t2"})  # type: ignore[arg-type]
    assert board.all_finished()
    assert board.exit_code() == ExitCode.UNSUCCESSFUL


def test_a_plain_line_shows_no_stale_rollback_counts() -> None:
    """The batch's end (`rolled_back`) can come before its rollback's record says so: the
    line then names the status alone, not the counts of a rollback still being planned."""
    board = Board.of([batch("b1", "rolling_back")])
    known = board.tracked["b1"]
    known.rollback = {"rollback_id": "r", "status": "rolling_back", "planning": True}
    assert _plain(known) == "b1 'name-b1' rolling_back planning the rollback"
    known.status = "rolled_back"
    assert _plain(known) == "b1 'name-b1' rolled_back"
    known.rollback = {"rollback_id": "r", "status": "rolled_back", "done": 3, "total": 3}
    known.rollback["percent"] = 100.0
    assert _plain(known) == "b1 'name-b1' rolled_back 100.0% 3/3 jobs restored"


def test_a_bar_shows_the_recent_pace_the_eta_goes_at_while_there_is_one() -> None:
    board = Board.of([batch("b1", throughput_per_s=2.5, pace_per_s=6.0, eta_s=3.0)])
    assert _fields(board.tracked["b1"])["rate"] == 6.0
    early = Board.of([batch("b2", throughput_per_s=2.5, pace_per_s=None)])
    assert _fields(early.tracked["b2"])["rate"] == 2.5  # before the first window: the mean
