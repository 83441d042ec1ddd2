"""A bucket's job views travel in one binary field (`servicekit.jobviews`): they read back
as written, times as aware datetimes in milliseconds as the store keeps them, the same
views give the same bytes whatever order they were set in, and views an older reporter left
as nested documents are read beside them, the binary winning."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from servicekit.buckets import Buckets
from servicekit.jobviews import encode_views, stored_views, unpack_bucket

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)


def view(status: str) -> dict[str, object]:
    return {"status": status, "attempt": 1, "executor": "e", "started_at": T0}


def test_views_read_back_as_written_with_aware_millisecond_times() -> None:
    stored = {"j2": view("completed"), "j10": view("running")}
    back = stored_views({"views": encode_views(stored)})
    assert back["j10"]["status"] == "running"
    assert back["j2"]["started_at"] == T0.replace(microsecond=123000)
    assert back["j2"]["started_at"].utcoffset() is not None


def test_the_same_views_give_the_same_bytes_in_any_order() -> None:
    a = encode_views({"j10": view("running"), "j2": view("completed"), "j1": view("failed")})
    b = encode_views({"j1": view("failed"), "j2": view("completed"), "j10": view("running")})
    assert a == b
    assert list(stored_views({"views": a})) == ["j1", "j2", "j10"]  # by index, not as text


def test_nested_views_of_an_older_reporter_are_read_and_the_binary_wins() -> None:
    doc = {
        "jobs": {"j0": view("running"), "j1": view("running")},
        "views": encode_views({"j1": view("completed")}),
    }
    views = unpack_bucket(doc, "b_1", Buckets(100), 3)
    assert {k: v["status"] for k, v in views.items()} == {"j0": "running", "j1": "completed"}
    assert views["j1"]["job_id"] == "b_1.301"
    assert stored_views(None) == {} == unpack_bucket(None, "b_1", Buckets(100), 0)
