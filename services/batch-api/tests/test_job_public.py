"""A job's HTTP shape from its view: a failure parked for a person's decision says so."""

from __future__ import annotations

from typing import Any

import pytest

from batch_api.handlers.jobs import public_job

pytestmark = pytest.mark.unit


def failed_view(*, awaiting: bool, attempt: int = 2) -> dict[str, Any]:
    error: dict[str, Any] = {"attempt": attempt, "error_class": "X", "severity": "low"}
    if awaiting:
        error["awaiting_decision"] = True
    return {
        "attempt": attempt,
        "status": "failed",
        "error_class": "AwaitingDecision" if awaiting else "X",
        "error_message": "decide: c_1",
        "retryable": False,
        # an earlier attempt that waited does not make the latest one wait
        "errors": {"1": {"attempt": 1, "awaiting_decision": True}, str(attempt): error},
    }


def test_a_failed_job_whose_latest_attempt_waits_for_a_decision_says_so() -> None:
    job = public_job("b", 3, failed_view(awaiting=True), "failed", None)
    assert (job.status, job.awaiting_decision) == ("failed", True)
    assert job.error is not None
    assert job.error.severity == "low"


def test_an_ordinary_failure_and_a_job_retried_since_do_not() -> None:
    assert not public_job("b", 3, failed_view(awaiting=False), "failed", None).awaiting_decision
    # retried after the decision: running again (the view still has the old error fields)
    assert not public_job("b", 3, failed_view(awaiting=True), "retrying", None).awaiting_decision
    assert not public_job("b", 3, None, "pending", None).awaiting_decision
