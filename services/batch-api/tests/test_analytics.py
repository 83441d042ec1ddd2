"""Analytics folded from views: durations, the throughput timeline, errors by class, retries,
and statistics across batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batch_api.domain.analytics import BatchAnalyticsTally, StatsTally, bucket_width

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def attempt(status: str, error: str | None = None, retryable: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"status": status, "error": None}
    if error:
        record["error"] = {"class": error, "message": "m", "retryable": retryable}
    return record


def job(status: str, at_s: float, duration_s: float, *attempts: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": status,
        "finished_at": T0 + timedelta(seconds=at_s),
        "duration_ms": duration_s * 1000,
        "attempts": {str(i + 1): a for i, a in enumerate(attempts)},
    }


def test_a_batch_that_retried_and_failed_some_jobs() -> None:
    tally = BatchAnalyticsTally()
    for i in range(8):
        done = job("completed", 1 + i, 0.5 + i * 0.1, attempt("completed"))
        done["metrics"] = {"rows": 10, "ok": True}  # what the job type counted
        tally.add("completed", done)
    flaky = job("completed", 20, 2.0, attempt("failed", "Timeout", True), attempt("completed"))
    tally.add("completed", flaky)
    broken = job(
        "failed",
        30,
        1.0,
        attempt("failed", "Timeout", True),
        attempt("failed", "Timeout", True),
        attempt("failed", "BadInput"),
    )
    # the job view's own record of its failures: BadInput's job type called it critical
    broken["errors"] = {"3": {"error_class": "BadInput", "severity": "critical"}}
    tally.add("failed", broken)
    stopped = job("cancelled", 31, 0.1, attempt("cancelled", "Cancelled"))
    tally.add("cancelled", stopped)
    tally.add("pending", None)

    out = tally.summary(T0, T0 + timedelta(seconds=40))
    durations = out["durations"]
    assert durations["count"] == 10  # the cancelled job's duration is not a run's
    assert durations["min_s"] == 0.5
    assert durations["max_s"] == 2.0
    assert durations["p50_s"] == pytest.approx(0.9)
    assert out["errors"] == [
        {"error_class": "Timeout", "count": 3, "retryable": 3, "severity": "medium"},
        {"error_class": "BadInput", "count": 1, "retryable": 0, "severity": "critical"},
    ]
    assert out["severities"] == {"low": 0, "medium": 3, "high": 0, "critical": 1}
    assert out["metrics"] == {"rows": 80}  # completed jobs', numbers only
    assert out["retries"] == {"attempts": 14, "retried_jobs": 2, "extra_attempts": 3}
    timeline = out["throughput"]
    assert timeline["bucket_s"] == 1  # 40 s fit in 60 one-second buckets
    by_second = {int((p["at"] - T0).total_seconds()): p for p in timeline["points"]}
    assert by_second[1]["completed"] == 1
    assert by_second[30] == {"at": T0 + timedelta(seconds=30), "completed": 0, "failed": 1,
                             "awaiting_decision": 0, "jobs_per_s": 1.0}  # fmt: skip
    assert sum(p["completed"] + p["failed"] for p in timeline["points"]) == 10


def test_a_job_parked_for_a_decision_is_a_failure_of_its_own_in_the_timeline() -> None:
    tally = BatchAnalyticsTally()
    parked = job("failed", 2, 0.1, attempt("failed", "AwaitingDecision"))
    parked |= {"attempt": 1, "errors": {"1": {"awaiting_decision": True, "severity": "low"}}}
    tally.add("failed", parked)
    tally.add("failed", job("failed", 2.5, 0.1, attempt("failed", "Boom")))
    point = tally.summary(T0, T0 + timedelta(seconds=3))["throughput"]["points"][2]
    assert (point["failed"], point["awaiting_decision"]) == (2, 1)


def test_an_attempt_parked_for_a_decision_is_not_counted_as_an_error() -> None:
    tally = BatchAnalyticsTally()
    parked = job("completed", 2, 0.1, attempt("failed", "AwaitingDecision"), attempt("completed"))
    parked["errors"] = {"1": {"awaiting_decision": True, "severity": "low"}}  # then decided
    tally.add("completed", parked)
    tally.add("failed", job("failed", 2.5, 0.1, attempt("failed", "Boom")))
    out = tally.summary(T0, T0 + timedelta(seconds=3))
    assert [e["error_class"] for e in out["errors"]] == ["Boom"]
    assert sum(out["severities"].values()) == 1  # Boom's only
    assert out["retries"]["attempts"] == 3  # the parked attempt still was an attempt


def test_a_batch_with_nothing_finished_has_empty_analytics() -> None:
    out = BatchAnalyticsTally().summary(None, T0)
    assert out["durations"]["count"] == 0
    assert out["durations"]["p95_s"] is None
    assert out["throughput"] == {"bucket_s": None, "points": []}
    assert out["errors"] == []


@pytest.mark.parametrize(
    ("span_s", "width"), [(30, 1), (61, 2), (600, 10), (3600, 60), (86_400, 1800)]
)
def test_timelines_have_at_most_60_points(span_s: float, width: int) -> None:
    assert bucket_width(span_s) == width
    assert span_s / bucket_width(span_s) <= 60


def test_stats_across_batches_per_job_type() -> None:
    tally = StatsTally()
    tally.add("completed", "demo.sleep", {"completed": 10})
    tally.add("completed_with_errors", "http.request", {"completed": 6, "failed": 2})
    tally.add("running", "http.request", {"completed": 1, "pending": 9})
    tally.add("cancelled", "demo.sleep", {"completed": 2, "cancelled": 8})
    out = tally.summary(T0, T0 + timedelta(seconds=100))
    assert out["batches_by_status"] == {
        "cancelled": 1,
        "completed": 1,
        "completed_with_errors": 1,
        "running": 1,
    }
    assert (out["batches"], out["jobs_completed"], out["jobs_failed"]) == (4, 19, 2)
    assert out["jobs_cancelled"] == 8
    assert out["success_rate"] == pytest.approx(19 / 21, abs=1e-6)
    assert out["jobs_per_s"] == pytest.approx(0.21)
    assert out["job_types"]["http.request"]["success_rate"] == pytest.approx(7 / 9, abs=1e-6)
    assert out["job_types"]["demo.sleep"]["batches"] == 2
