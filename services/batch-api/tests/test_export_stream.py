"""The export ZIP is produced while it streams: many chunks, none near the whole archive, and
the chunks together are a valid archive with one CSV row per job. The job views come from an
in-memory stand-in for the read models (this checks the streaming logic, not the store)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from batch_api.adapters.views import ReadModels, log_order
from batch_api.handlers.batches import BatchService, Loaded
from batch_api.handlers.reports import ReportService
from servicekit.buckets import Buckets

pytestmark = pytest.mark.unit
TOTAL = 5_500


class BucketViews:
    """Job views by bucket, like the reporter's `job_views` documents."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    async def batch_log(self, batch_id: str) -> list[dict[str, Any]]:
        return [{"type": "BatchCreated", "at": "2026-11-24T00:00:00Z", "seq": 0}]

    async def job_bucket(
        self, batch_id: str, layout: Buckets, bucket: int
    ) -> dict[str, dict[str, Any]]:
        self.reads.append(bucket)
        views: dict[str, dict[str, Any]] = {}
        for k in range(layout.size):
            index = layout.index_of(bucket, f"j{k}")
            if index >= TOTAL - 100:
                continue  # the last 100 jobs never started
            failed = index % 10 == 0
            views[f"j{k}"] = {
                "status": "failed" if failed else "completed",
                "attempt": 1,
                "duration_ms": 1000 + index % 7,
                "metrics": {} if failed else {"removed": 2},
                "output": None if failed else {"removed": 2, "kept": [f"t{index}"]},
                "error_class": "Boom" if failed else None,
                "error_message": f"job {index} failed" if failed else None,
                "attempts": {"1": {"status": "failed" if failed else "completed"}},
            }
        return views


def loaded() -> Loaded:
    doc = {
        "_id": "b_1",
        "tenant": "t",
        "name": "big",
        "job_type": "demo.sleep",
        "total": TOTAL,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "phase": "submitted",
    }
    view = {"status": "running", "counts": {"total": TOTAL}}
    return Loaded(doc, view, "running")


async def test_export_streams_in_chunks_and_reads_back() -> None:
    views = BucketViews()
    service = ReportService(cast(BatchService, None), cast(ReadModels, views))
    chunks = [chunk async for chunk in service.export_zip(loaded())]
    whole = b"".join(chunks)
    assert len([c for c in chunks if c]) >= 6
    assert max(len(c) for c in chunks) < len(whole) / 2
    assert views.reads == [0, 1, 2, 3, 4, 5] * 2  # jobs.csv + report, then events.jsonl

    archive = zipfile.ZipFile(io.BytesIO(whole))
    assert archive.namelist() == ["batch.json", "jobs.csv", "report.json", "events.jsonl"]
    rows = list(csv.DictReader(io.StringIO(archive.read("jobs.csv").decode())))
    assert [r["index"] for r in rows] == [str(i) for i in range(TOTAL)]
    assert {r["status"] for r in rows[-100:]} == {"pending"}
    assert rows[10]["error_message"] == "job 10 failed"
    assert rows[10]["output"] == ""
    assert json.loads(rows[11]["output"]) == {"removed": 2, "kept": ["t11"]}
    report = json.loads(archive.read("report.json"))
    assert report["totals"] == {"total": TOTAL, "completed": 4860, "failed": 540, "pending": 100}
    assert report["metrics"] == {"removed": 4860 * 2}
    assert report["failed_count"] == 540
    lines = archive.read("events.jsonl").splitlines()
    assert b"batch_event" in lines[0]
    assert len(lines) == 1 + TOTAL - 100  # the log, then one line per attempt
    assert json.loads(archive.read("batch.json"))["id"] == "b_1"


def test_log_entries_stamped_in_one_millisecond_keep_their_order() -> None:
    # as the store returns them: `at` cut to the millisecond, fields in no set order
    at = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)
    stored = [
        {"type": "BatchSubmitted", "at": at, "at_us": 123_840, "seq": 0},
        {"type": "BatchStarted", "at": at, "at_us": 123_020, "seq": 1},
        {"type": "BatchCreated", "at": at, "at_us": 123_400, "seq": 0},
        {"type": "BatchItemsAdded", "at": at, "at_us": 123_610, "seq": 0},
        {"type": "BatchPauseRequested", "at": at.replace(microsecond=0), "seq": 0},
    ]
    ordered = [e["type"] for e in sorted(stored, key=log_order)]
    assert ordered == [
        "BatchPauseRequested",
        "BatchStarted",
        "BatchCreated",
        "BatchItemsAdded",
        "BatchSubmitted",
    ]
