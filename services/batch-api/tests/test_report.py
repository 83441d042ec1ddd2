"""The batch report folded from job rows: counts, success rate, durations, metric totals and
the bounded list of failures."""

from __future__ import annotations

from typing import Any

import pytest

from batch_api.domain import report as report_module
from batch_api.domain.report import ReportTally, job_row, percentile

pytestmark = pytest.mark.unit


def fold(views: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    tally = ReportTally()
    for index, (status, view) in enumerate(views):
        tally.add(job_row("b_1", index, status, view), view)
    return tally.summary()


def test_counts_rate_durations_and_metrics() -> None:
    done = {"duration_ms": 1000, "attempt": 1, "metrics": {"removed": 3, "ok": True, "x": "s"}}
    summary = fold(
        [
            ("completed", done),
            ("completed", {**done, "duration_ms": 3000, "metrics": {"removed": 2, "kept": 1.5}}),
            (
                "failed",
                {"duration_ms": 2000, "attempt": 2, "error_class": "E", "error_message": "m"},
            ),
            ("pending", None),
        ]
    )
    assert summary["totals"] == {"total": 4, "completed": 2, "failed": 1, "pending": 1}
    assert summary["success_rate"] == pytest.approx(2 / 3)
    assert summary["avg_duration_s"] == 2.0
    assert summary["p50_duration_s"] == 2.0
    assert summary["p95_duration_s"] == 3.0
    assert summary["metrics"] == {"kept": 1.5, "removed": 5}
    assert summary["failed_jobs"] == [
        {"job_id": "b_1.2", "index": 2, "attempt": 2, "error_class": "E", "error_message": "m"}
    ]
    assert summary["failed_count"] == 1


def test_nothing_finished_has_no_rate_or_durations() -> None:
    summary = fold([("pending", None), ("running", {"attempt": 1})])
    assert summary["success_rate"] is None
    assert summary["avg_duration_s"] is None
    assert summary["p95_duration_s"] is None
    assert summary["metrics"] == {}


def test_failed_metrics_are_not_totalled_and_completed_jobs_show_no_error() -> None:
    view = {"metrics": {"removed": 9}, "error_class": "Old", "error_message": "earlier"}
    summary = fold([("failed", view), ("completed", view)])
    assert summary["metrics"] == {"removed": 9}
    assert job_row("b_1", 1, "completed", view).error_class is None


def test_failed_list_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_module, "MAX_FAILED_LISTED", 2)
    summary = fold([("failed", {"error_class": "E"})] * 5)
    assert len(summary["failed_jobs"]) == 2
    assert summary["failed_count"] == 5
    assert summary["failed_truncated"] is True


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_completed_jobs_warnings_are_counted_and_listed_up_to_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(report_module, "MAX_WARNINGS_LISTED", 3)
    summary = fold(
        [
            ("completed", {"warnings": ["a", "b"]}),
            ("completed", {"warnings": None}),
            ("running", {"warnings": ["not yet"]}),  # only a completed job's count
            ("completed", {"warnings": ["c", "d"]}),
        ]
    )
    assert (summary["warned_jobs"], summary["warnings_count"]) == (2, 4)
    assert summary["warnings"] == [
        {"job_id": "b_1.0", "index": 0, "message": "a"},
        {"job_id": "b_1.0", "index": 0, "message": "b"},
        {"job_id": "b_1.3", "index": 3, "message": "c"},
    ]
    assert summary["warnings_truncated"] is True


def test_worker_resources_of_completed_jobs_are_summed_and_peaked() -> None:
    summary = fold(
        [
            ("completed", {"resources": {"cpu_s": 1.25, "max_rss_mb": 40.0}}),
            ("completed", {"resources": {"cpu_s": 0.5, "max_rss_mb": 64.5}}),
            ("completed", {"resources": None}),  # run inline
            ("failed", {"resources": {"cpu_s": 9.0, "max_rss_mb": 900.0}}),  # not completed
        ]
    )
    assert summary["resources"] == {"jobs_measured": 2, "cpu_s": 1.75, "max_rss_mb": 64.5}
    assert fold([("completed", {})])["resources"] is None
