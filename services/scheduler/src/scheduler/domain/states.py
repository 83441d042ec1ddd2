"""The batch and job state machines: pure functions from (state, event) to the next state.

An event that is not allowed in a state raises `IllegalTransition`; callers decide whether
that is a caller's error (a 409 for the API) or a duplicate to ignore (a redelivered event)."""

from __future__ import annotations

from typing import Final, Literal

from contracts.vocabulary import BatchStatus as BatchState
from contracts.vocabulary import JobStatus as JobState

BatchEvent = Literal[
    "upload",
    "submit",
    "start",
    "pause",
    "resume",
    "cancel",
    "complete",
    "complete_with_errors",
    "fail",
    "retry",
    "rollback",
    "rollback_done",
    "rollback_fail",
    "archive",
]
JobEvent = Literal[
    "dispatch", "start", "complete", "fail", "retry", "lease_expired", "cancel", "skip"
]


class IllegalTransition(Exception):
    def __init__(self, kind: str, state: str, event: str) -> None:
        super().__init__(f"a {kind} that is {state} cannot {event.replace('_', ' ')}")
        self.kind = kind
        self.state = state
        self.event = event


_FINISH: Final = {
    "complete": "completed",
    "complete_with_errors": "completed_with_errors",
    "fail": "failed",
}
_AFTER_RUN: Final = {
    "completed": {"rollback": "rolling_back", "archive": "archived"},
    "completed_with_errors": {
        "retry": "retrying",
        "rollback": "rolling_back",
        "archive": "archived",
    },
    "failed": {"retry": "retrying", "rollback": "rolling_back", "archive": "archived"},
    "cancelled": {"retry": "retrying", "rollback": "rolling_back", "archive": "archived"},
}

BATCH_TRANSITIONS: Final[dict[str, dict[str, str]]] = {
    "draft": {"upload": "uploading", "submit": "queued", "cancel": "cancelled"},
    "uploading": {"upload": "uploading", "submit": "queued", "cancel": "cancelled"},
    "queued": {"start": "running", "pause": "paused", "cancel": "cancelled"},
    "running": {"pause": "paused", "cancel": "cancelled", **_FINISH},
    "paused": {"resume": "running", "cancel": "cancelled"},
    "retrying": {"pause": "paused", "cancel": "cancelled", **_FINISH},
    **_AFTER_RUN,
    "rolling_back": {"rollback_done": "rolled_back", "rollback_fail": "rollback_failed"},
    "rolled_back": {"archive": "archived"},
    "rollback_failed": {"rollback": "rolling_back", "archive": "archived"},
    "archived": {},
}

JOB_TRANSITIONS: Final[dict[str, dict[str, str]]] = {
    "pending": {"dispatch": "dispatched", "cancel": "cancelled", "skip": "skipped"},
    "dispatched": {
        "start": "running",
        "complete": "completed",
        "skip": "skipped",
        "fail": "failed",
        "retry": "retrying",
        "lease_expired": "retrying",
        "cancel": "cancelled",
    },
    "running": {
        "complete": "completed",
        "skip": "skipped",
        "fail": "failed",
        "retry": "retrying",
        "lease_expired": "retrying",
        "cancel": "cancelled",
    },
    "retrying": {"dispatch": "dispatched", "cancel": "cancelled", "skip": "skipped"},
    "failed": {"retry": "retrying"},
    "completed": {},
    "skipped": {},
    "cancelled": {},
}

BATCH_STATES: Final = tuple(BatchState.__args__)  # type: ignore[attr-defined]
BATCH_EVENTS: Final = tuple(BatchEvent.__args__)  # type: ignore[attr-defined]
JOB_STATES: Final = tuple(JobState.__args__)  # type: ignore[attr-defined]
JOB_EVENTS: Final = tuple(JobEvent.__args__)  # type: ignore[attr-defined]
TERMINAL_JOB_STATES: Final = frozenset({"completed", "failed", "skipped", "cancelled"})
ACTIVE_BATCH_STATES: Final = frozenset({"queued", "running", "paused", "retrying"})
FINISHED_BATCH_STATES: Final = frozenset(
    {"completed", "completed_with_errors", "failed", "cancelled"}
)


assert set(BATCH_TRANSITIONS) == set(BATCH_STATES), "every batch state needs a row"
assert set(JOB_TRANSITIONS) == set(JOB_STATES), "every job state needs a row"


def next_batch_state(state: str, event: str) -> str:
    try:
        return BATCH_TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition("batch", state, event) from None


def next_job_state(state: str, event: str) -> str:
    try:
        return JOB_TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition("job", state, event) from None


def can_batch(state: str, event: str) -> bool:
    return event in BATCH_TRANSITIONS.get(state, {})
