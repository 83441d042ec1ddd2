"""Every state × every event of both state machines: allowed with the expected next state, or
a typed rejection."""

from __future__ import annotations

import itertools

import pytest

from scheduler.domain.states import (
    BATCH_EVENTS,
    BATCH_STATES,
    JOB_EVENTS,
    JOB_STATES,
    IllegalTransition,
    next_batch_state,
    next_job_state,
)

pytestmark = pytest.mark.unit

BATCH_ALLOWED = {
    ("draft", "upload"): "uploading",
    ("draft", "submit"): "queued",
    ("draft", "cancel"): "cancelled",
    ("uploading", "upload"): "uploading",
    ("uploading", "submit"): "queued",
    ("uploading", "cancel"): "cancelled",
    ("queued", "start"): "running",
    ("queued", "pause"): "paused",
    ("queued", "cancel"): "cancelled",
    ("running", "pause"): "paused",
    ("running", "cancel"): "cancelled",
    ("running", "skip"): "skipped",
    ("running", "complete"): "completed",
    ("running", "complete_with_errors"): "completed_with_errors",
    ("running", "fail"): "failed",
    ("paused", "resume"): "running",
    ("paused", "cancel"): "cancelled",
    ("retrying", "pause"): "paused",
    ("retrying", "cancel"): "cancelled",
    ("retrying", "complete"): "completed",
    ("retrying", "complete_with_errors"): "completed_with_errors",
    ("retrying", "fail"): "failed",
    ("completed", "rollback"): "rolling_back",
    ("completed", "archive"): "archived",
    ("completed_with_errors", "retry"): "retrying",
    ("completed_with_errors", "rollback"): "rolling_back",
    ("completed_with_errors", "archive"): "archived",
    ("failed", "retry"): "retrying",
    ("failed", "rollback"): "rolling_back",
    ("failed", "archive"): "archived",
    ("cancelled", "retry"): "retrying",
    ("cancelled", "rollback"): "rolling_back",
    ("cancelled", "archive"): "archived",
    ("rolling_back", "rollback_done"): "rolled_back",
    ("rolling_back", "rollback_fail"): "rollback_failed",
    ("rolled_back", "archive"): "archived",
    ("rollback_failed", "rollback"): "rolling_back",
    ("rollback_failed", "archive"): "archived",
}

JOB_ALLOWED = {
    ("pending", "dispatch"): "dispatched",
    ("pending", "cancel"): "cancelled",
    ("pending", "skip"): "skipped",
    ("dispatched", "start"): "running",
    ("dispatched", "complete"): "completed",
    ("dispatched", "fail"): "failed",
    ("dispatched", "retry"): "retrying",
    ("dispatched", "lease_expired"): "retrying",
    ("dispatched", "cancel"): "cancelled",
    ("dispatched", "skip"): "skipped",  # its job type had nothing to do (`SkipJob`)
    ("running", "complete"): "completed",
    ("running", "fail"): "failed",
    ("running", "retry"): "retrying",
    ("running", "lease_expired"): "retrying",
    ("running", "cancel"): "cancelled",
    ("running", "skip"): "skipped",
    ("retrying", "dispatch"): "dispatched",
    ("retrying", "cancel"): "cancelled",
    ("retrying", "skip"): "skipped",
    ("failed", "retry"): "retrying",
}


def test_the_design_states_are_all_there() -> None:
    assert set(BATCH_STATES) == {
        "draft",
        "uploading",
        "queued",
        "running",
        "paused",
        "completed",
        "completed_with_errors",
        "failed",
        "cancelled",
        "retrying",
        "rolling_back",
        "rolled_back",
        "rollback_failed",
        "archived",
    }
    assert set(JOB_STATES) == {
        "pending",
        "dispatched",
        "running",
        "completed",
        "failed",
        "retrying",
        "skipped",
        "cancelled",
    }


@pytest.mark.parametrize(("state", "event"), list(itertools.product(BATCH_STATES, BATCH_EVENTS)))
def test_batch_transition(state: str, event: str) -> None:
    expected = BATCH_ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_batch_state(state, event)
        assert info.value.state == state
        assert info.value.event == event
    else:
        assert next_batch_state(state, event) == expected


@pytest.mark.parametrize(("state", "event"), list(itertools.product(JOB_STATES, JOB_EVENTS)))
def test_job_transition(state: str, event: str) -> None:
    expected = JOB_ALLOWED.get((state, event))
    if expected is None:
        with pytest.raises(IllegalTransition):
            next_job_state(state, event)
    else:
        assert next_job_state(state, event) == expected


def test_archived_and_terminal_jobs_accept_nothing() -> None:
    for event in BATCH_EVENTS:
        with pytest.raises(IllegalTransition):
            next_batch_state("archived", event)
    for state in ("completed", "skipped", "cancelled"):
        for event in JOB_EVENTS:
            with pytest.raises(IllegalTransition):
                next_job_state(state, event)
