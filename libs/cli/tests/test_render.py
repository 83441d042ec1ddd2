"""What people read: durations, rates, tables, batch detail, and error messages built from
problem details (never a traceback)."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console, RenderableType

from batchyard_cli.errors import InputError, Problem, Unreachable, api_error
from batchyard_cli.render import (
    batch_view,
    batches_table,
    counts_summary,
    error_message,
    format_duration,
    format_percent,
    format_rate,
    job_view,
    jobs_table,
    mapping_view,
)
from batchyard_cli.resources import Batch, Job

pytestmark = pytest.mark.unit


def text_of(renderable: RenderableType, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def a_batch(**changes: Any) -> Batch:
    batch: dict[str, Any] = {
        "id": "b_0001",
        "name": "nightly import",
        "description": "",
        "job_type": "demo.sleep",
        "priority": "high",
        "tags": ["etl"],
        "owner": "admin",
        "status": "running",
        "created_at": "2026-01-02T03:04:05+00:00",
        "started_at": "2026-01-02T03:04:06+00:00",
        "finished_at": None,
        "config": {"max_concurrent_jobs": 4, "retry": {"max_attempts": 3}},
        "progress": {
            "total": 20,
            "pending": 5,
            "dispatched": 0,
            "running": 3,
            "completed": 10,
            "failed": 2,
            "retrying": 0,
            "skipped": 0,
            "cancelled": 0,
            "percent": 60.0,
            "throughput_per_s": 2.5,
            "elapsed_s": 4.8,
            "eta_s": 3.2,
        },
    }
    batch.update(changes)
    return batch  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "–"),
        (-1, "–"),
        (0, "0.0s"),
        (4.24, "4.2s"),
        (42.4, "42s"),
        (185, "3m 05s"),
        (7380, "2h 03m"),
    ],
)
def test_durations(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("rate", "shown"), [(None, "–"), (3.46, "3.5/s"), (120.4, "120/s"), (12_345, "12.3k/s")]
)
def test_rates(rate: float | None, shown: str) -> None:
    assert format_rate(rate) == shown


def test_counts_summary_names_only_what_is_there() -> None:
    assert counts_summary(a_batch()["progress"]) == "12/20 done · 2 failed · 3 running"
    parked = {**a_batch()["progress"], "awaiting_decision": 1}
    assert counts_summary(parked) == "12/20 done · 2 failed (1 awaiting a decision) · 3 running"


def test_batches_table_shows_each_batch_and_the_next_cursor() -> None:
    text = text_of(batches_table([a_batch(), a_batch(id="b_0002", status="completed")], "CUR"))
    assert "b_0001" in text
    assert "b_0002" in text
    assert "nightly import" in text
    assert "60.0% 12/20" in text
    assert "--cursor CUR" in text
    assert "No batches match." in text_of(batches_table([]))


def test_batches_table_says_jobs_awaiting_a_decision_apart_from_the_failed() -> None:
    parked = {**a_batch()["progress"], "failed": 3, "awaiting_decision": 2}
    row = text_of(batches_table([a_batch(progress=parked)])).splitlines()[3]
    assert "1 · 2 awaiting" in row
    only_parked = {**parked, "failed": 2}
    assert "0 · 2 awaiting" in text_of(batches_table([a_batch(progress=only_parked)]))


def test_batch_view_shows_progress_counts_timing_and_config() -> None:
    text = text_of(batch_view(a_batch()))
    assert "running" in text
    assert "60.0%" in text
    assert "12/20 done · 2 failed · 3 running" in text
    assert "elapsed 4.8s · 2.5/s · ETA 3.2s" in text
    assert "retry.max_attempts=3" in text
    unset = {"max_concurrent_jobs": 4, "stagger": None, "params": {}, "notifications": []}
    shown = text_of(batch_view(a_batch(config=unset)))
    assert "max_concurrent_jobs=4" in shown
    assert "stagger" not in shown
    assert "params" not in shown
    assert "notifications" not in shown
    finished = text_of(batch_view(a_batch(finished_at="2026-01-02T03:05:00+00:00")))
    assert "took 4.8s" in finished
    assert "ETA" not in finished


def test_batch_view_says_how_long_a_job_takes_on_average() -> None:
    progress = {**a_batch()["progress"], "average_job_ms": 501.4}
    assert "ETA 3.2s · 501ms a job" in text_of(batch_view(a_batch(progress=progress)))
    slow = {**progress, "average_job_ms": 75_000.0}
    finished = a_batch(progress=slow, finished_at="2026-01-02T03:05:00+00:00")
    assert "took 4.8s · 2.5/s · 1m 15s a job" in text_of(batch_view(finished))


def test_batch_view_gives_the_recent_pace_the_eta_goes_at_beside_the_mean() -> None:
    progress = {**a_batch()["progress"], "pace_per_s": 6.04}
    text = text_of(batch_view(a_batch(progress=progress)))
    assert "elapsed 4.8s · 6.0/s lately (2.5/s overall) · ETA 3.2s" in text


def test_batch_view_says_where_to_decide_what_its_jobs_wait_for() -> None:
    assert "await a decision" not in text_of(batch_view(a_batch()))
    progress = {**a_batch()["progress"], "awaiting_decision": 2}
    text = text_of(batch_view(a_batch(progress=progress, job_type="templates.consolidate")))
    assert "Decide    2 job(s) await a decision: batchyard library conflicts b_0001 --waiting" in (
        text
    )
    plugin = text_of(batch_view(a_batch(progress=progress)))  # another job type's decisions
    assert "2 job(s) await a decision: once decided, run each again: batchyard jobs retry" in plugin


def test_batch_view_says_how_much_of_the_elapsed_time_it_ran_when_it_was_paused() -> None:
    progress = {**a_batch()["progress"], "elapsed_s": 3725.0, "active_s": 65.0, "eta_s": 30.0}
    text = text_of(batch_view(a_batch(progress=progress)))
    assert "elapsed 1h 02m (1m 05s of it running) · 2.5/s · ETA 30s" in text
    unpaused = {**a_batch()["progress"], "active_s": 4.5}  # under a second less: not said
    assert "elapsed 4.8s · 2.5/s" in text_of(batch_view(a_batch(progress=unpaused)))


def test_batch_view_shows_the_rollback_and_how_far_it_is() -> None:
    rolling = {
        "rollback_id": "r1",
        "status": "rolling_back",
        "done": 100,
        "total": 300,
        "percent": 33.33,
        "started_at": "2026-01-02T03:06:00+00:00",
        "finished_at": None,
        "reason": None,
        "throughput_per_s": 50.0,
        "eta_s": 4.0,
    }
    text = text_of(batch_view(a_batch(status="rolling_back", rollback=rolling)))
    assert "Rollback  rolling back: 100/300 jobs restored (33.3%) · 50.0/s · ETA 4.0s" in text
    failed = {**rolling, "status": "rollback_failed", "reason": "store down"}
    failed["finished_at"] = "2026-01-02T03:06:09+00:00"
    text = text_of(batch_view(a_batch(status="rollback_failed", rollback=failed)))
    assert "rollback failed: 100/300 jobs restored (33.3%) · ended" in text
    assert "store down" in text
    refused = {**failed, "done": 0, "total": 0, "percent": 0.0, "reason": "1 job(s) cannot"}
    text = text_of(batch_view(a_batch(status="rollback_failed", rollback=refused)))
    assert "rollback failed: nothing restored · ended" in text
    assert "Rollback" not in text_of(batch_view(a_batch()))
    planning = {**rolling, "done": 0, "total": 0, "percent": 0.0, "planning": True}
    text = text_of(batch_view(a_batch(status="rolling_back", rollback=planning)))
    (line,) = [line for line in text.splitlines() if line.startswith("Rollback")]
    assert (
        line.rstrip()
        == "Rollback  rolling back · planning: reading the backups, nothing restored yet"
    )


def test_batch_view_and_table_show_the_policies() -> None:
    waiting = a_batch(status="queued", waiting_for=["b_up1", "b_up2"], reason="waiting")
    text = text_of(batch_view(waiting))
    assert "Waiting for  b_up1, b_up2" in text
    assert "waiting for 2" in text_of(batches_table([waiting]))
    late = a_batch(deadline="2026-01-02T03:05:00+00:00", deadline_at_risk=True)
    text = text_of(batch_view(late))
    assert "Deadline" in text
    assert "at risk" in text
    assert "at risk" in text_of(batches_table([late]))
    # Once finished, a batch is no longer "at risk"; a started one waits for nothing.
    done = a_batch(status="completed", deadline="2026-01-02T03:05:00+00:00", deadline_at_risk=True)
    assert "at risk" not in text_of(batch_view(done))
    assert "Waiting" not in text_of(batch_view(a_batch(waiting_for=["b_up1"])))


def a_job(**changes: Any) -> Job:
    """A job as the API lists it: the first of batch b_0001, completed."""
    job: dict[str, Any] = {
        "id": "b_0001.0",
        "batch_id": "b_0001",
        "index": 0,
        "status": "completed",
        "attempt": 1,
        "item": {},
        "output": None,
        "error": None,
        "attempts": [],
        "started_at": None,
        "finished_at": None,
        "duration_s": 0.5,
    }
    return job | changes  # type: ignore[return-value]


def test_a_percent_never_claims_all_or_none_when_it_is_not_so() -> None:
    assert format_percent(42.46) == "42.5%"
    assert format_percent(100.0) == "100.0%"
    assert format_percent(99.99) == "99.9%"  # 9,999 of 10,000 done: not yet all
    assert format_percent(100 * 30_781 / 30_786) == "99.9%"  # 5 failed in 30,786
    assert format_percent(0.0) == "0.0%"
    assert format_percent(0.01) == "0.1%"
    assert format_percent(None) == "–"


def test_jobs_table_shows_errors() -> None:
    job: Job = {  # type: ignore[typeddict-item]
        "id": "b_0001.3",
        "batch_id": "b_0001",
        "index": 3,
        "status": "failed",
        "attempt": 3,
        "item": {},
        "output": None,
        "error": {"class": "DemoFailure", "message": "boom", "retryable": True},
        "attempts": [],
        "started_at": None,
        "finished_at": None,
        "duration_s": 0.5,
    }
    text = text_of(jobs_table([job]))
    assert "b_0001.3" in text
    assert "DemoFailure: boom (retryable)" in text
    assert "rolled back" not in text
    assert "Traceback" not in text_of(job_view(job))
    job["error"] = {  # type: ignore[typeddict-unknown-key]
        "class": "KeyError",
        "message": "'k'",
        "retryable": False,
        "traceback": "Traceback (most recent call last):\n  File ...\nKeyError: 'k'",
        "severity": "critical",
    }
    shown = text_of(job_view(job))
    assert "KeyError: 'k' (critical)" in shown
    assert "Traceback (most recent call last):" in shown


def test_a_job_waiting_for_a_decision_reads_as_waiting_not_as_an_error() -> None:
    error = {
        "class": "AwaitingDecision",
        "message": "decide which template to keep: c_42",
        "retryable": False,
        "severity": "low",
    }
    job = a_job(id="b_0001.5", status="failed", error=error, awaiting_decision=True)
    listed = text_of(jobs_table([job]))
    assert "awaiting decision" in listed
    assert "decide which template to keep: c_42" in listed
    assert "failed" not in listed
    assert "AwaitingDecision" not in listed
    shown = text_of(job_view(job))
    assert "Waiting for" in shown
    assert "Error" not in shown
    job["awaiting_decision"] = False  # an ordinary failure still reads as one
    assert "AwaitingDecision: decide which template to keep: c_42 (low)" in text_of(
        jobs_table([job])
    )


def test_a_job_a_rollback_undid_says_so() -> None:
    job = a_job(output={"n": 1}, rolled_back_at="2026-01-02T03:04:05+00:00")
    assert "completed, rolled back" in text_of(jobs_table([job]))
    assert "Rolled back" in text_of(job_view(job))


def test_a_running_job_shows_what_it_last_said_of_its_progress() -> None:
    job = a_job(
        status="running",
        started_at="2026-01-02T03:04:05+00:00",
        duration_s=None,
        progress={"percent": 40, "message": "step 2 of 5", "at": "2026-01-02T03:04:07+00:00"},
    )
    assert "running 40% step 2 of 5" in text_of(jobs_table([job]))
    assert "running 40% step 2 of 5" in text_of(job_view(job))
    job["progress"] = {"percent": None, "message": "12 templates written", "at": "x"}
    assert "running 12 templates written" in text_of(jobs_table([job]))


def test_mapping_view_shows_scalars_nested_objects_and_record_lists() -> None:
    report = {
        "success_rate": 0.9,
        "p95_duration_s": 1.25,
        "totals": {"completed": 9, "failed": 1},
        "failed_jobs": [{"job_id": "b_1.4", "error": "boom"}],
    }
    text = text_of(mapping_view(report, title="Report"))
    assert "90.0%" in text
    assert "p95 duration  1.2s" in text  # the unit is in the value, not also in the label
    assert "completed" in text
    assert "9" in text
    assert "b_1.4" in text
    assert "boom" in text


def test_error_message_of_a_problem_lists_field_errors() -> None:
    problem = Problem(
        422,
        "Invalid items",
        "2 item(s) do not match the input schema of demo.sleep",
        errors=[
            {"item": 0, "path": "seconds", "msg": "'soon' is not of type 'number'"},
            {"loc": ["body", "name"], "msg": "Field required"},
        ],
    )
    message = error_message(api_error(problem))
    assert message.splitlines() == [
        "Error: Invalid items (HTTP 422): 2 item(s) do not match the input schema of demo.sleep",
        "  - item 0, seconds: 'soon' is not of type 'number'",
        "  - body.name: Field required",
    ]


def test_error_message_hints_at_the_key_on_401_and_is_plain_otherwise() -> None:
    assert "--api-key" in error_message(api_error(Problem(401, "Unauthorized", "unknown key")))
    assert error_message(Unreachable("cannot reach http://x")) == "Error: cannot reach http://x"
    assert error_message(InputError("a.jsonl:3: not valid JSON")) == (
        "Error: a.jsonl:3: not valid JSON"
    )
