"""The live stream's `job_failed` frames: what a watcher needs to show a failed attempt as an
error, as one its job type may pass if retried, or as a job parked for a person's decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from batch_api.handlers.live import StreamState
from contracts.codec import envelope_for
from contracts.events import JobFailed

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def frame_of(**changes: Any) -> tuple[str, dict[str, Any]]:
    fields: dict[str, Any] = {
        "job_id": "b.3",
        "batch_id": "b",
        "attempt": 1,
        "executor_id": "e",
        "started_at": T0,
        "finished_at": T0,
        "duration_ms": 1,
        "error_class": "DemoFailure",
        "error_message": "boom",
        "retryable": False,
    }
    event = JobFailed(**(fields | changes))
    [frame] = StreamState().frames(envelope_for(event, producer="t"), event)
    lines = dict(line.split(": ", 1) for line in frame.decode().strip().splitlines())
    return lines["event"], orjson.loads(lines["data"])


def test_a_failed_attempt_says_its_error_and_whether_it_may_pass_if_retried() -> None:
    name, data = frame_of(retryable=True, attempt=2)
    assert name == "job_failed"
    assert data == {
        "batch_id": "b",
        "job_id": "b.3",
        "attempt": 2,
        "error": {"class": "DemoFailure", "message": "boom", "retryable": True},
        "awaiting_decision": False,
    }


def test_a_job_parked_for_a_decision_says_so() -> None:
    _, data = frame_of(error_class="AwaitingDecision", awaiting_decision=True)
    assert data["awaiting_decision"] is True
