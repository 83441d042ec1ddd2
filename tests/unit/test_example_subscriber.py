"""The example subscriber's handling of records (examples/subscriber/follow_batches.py): what
it prints, and what it skips as a repeat or as something it does not understand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "subscriber" / "follow_batches.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("follow_batches", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


follow_batches = _module()


def record(batch_id: str, seq: int, kind: str, **data: Any) -> bytes:
    counts = {"total": 4, "completed": seq - 1, "failed": 0}
    body = {"batch_id": batch_id, "status": "running", "counts": counts, **data}
    envelope = {
        "event_id": f"e{seq}",
        "type": kind,
        "schema_version": 1,
        "occurred_at": "2026-12-06T08:00:00.123456Z",
        "producer": "scheduler",
        "batch_id": batch_id,
        "seq": seq,
        "data": body,
    }
    return json.dumps(envelope).encode()


def test_repeats_and_older_events_are_skipped() -> None:
    follower = follow_batches.Follower(None)
    assert "BatchStarted" in follower.handle(record("b_1", 1, "BatchStarted"))
    assert "1/4 ended" in follower.handle(record("b_1", 2, "BatchProgress"))
    assert follower.handle(record("b_1", 2, "BatchProgress")) is None  # redelivered
    assert follower.handle(record("b_1", 1, "BatchStarted")) is None  # older news
    assert follower.handle(record("b_2", 1, "BatchStarted")) is not None  # its own numbering


def test_what_it_does_not_understand_is_skipped_not_fatal() -> None:
    follower = follow_batches.Follower(None)
    for raw in (b"{not json", b"[]", b'{"type": "BatchStarted"}', None):
        assert follower.handle(raw) is None
    assert follower.handle(record("b_1", 1, "SomethingNewer", added=True)) is not None


def test_with_a_batch_it_shows_only_that_one_and_knows_how_it_ended() -> None:
    follower = follow_batches.Follower("b_1")
    assert follower.handle(record("b_2", 1, "BatchStarted")) is None
    assert follower.handle(record("b_1", 1, "BatchStarted")) is not None
    assert follower.exit_code is None
    line = follower.handle(record("b_1", 5, "BatchFailed", status="failed", reason="too many"))
    assert line is not None
    assert line.endswith(": too many")
    assert follower.exit_code == 1


@pytest.mark.parametrize(
    ("status", "code"), [("completed", 0), ("completed_with_errors", 1), ("cancelled", 1)]
)
def test_it_ends_zero_only_when_every_job_completed(status: str, code: int) -> None:
    follower = follow_batches.Follower("b_1")
    kind = "BatchCancelled" if status == "cancelled" else "BatchCompleted"
    follower.handle(record("b_1", 3, kind, status=status))
    assert follower.exit_code == code
