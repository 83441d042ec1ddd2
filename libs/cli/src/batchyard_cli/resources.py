"""The shapes of the API's JSON answers, as the CLI reads them (see the API contract). They
are TypedDicts over the decoded JSON: `--json` prints exactly what the server sent."""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

T = TypeVar("T")

BatchAction = Literal[
    "start", "pause", "resume", "cancel", "retry", "rollback", "duplicate", "archive"
]
Role = Literal["viewer", "operator", "admin"]


class Progress(TypedDict):
    total: int
    pending: int
    dispatched: int
    running: int
    completed: int
    failed: int
    retrying: int
    skipped: int
    cancelled: int
    awaiting_decision: NotRequired[int]
    percent: float
    throughput_per_s: float | None
    pace_per_s: NotRequired[float | None]
    elapsed_s: float | None
    active_s: NotRequired[float | None]
    average_job_ms: NotRequired[float | None]
    eta_s: float | None


class Rollback(TypedDict):
    """A batch's latest rollback and its progress."""

    rollback_id: str
    status: str
    done: int
    total: int
    percent: float
    started_at: str
    finished_at: str | None
    reason: str | None
    throughput_per_s: NotRequired[float | None]
    eta_s: NotRequired[float | None]


class Batch(TypedDict):
    id: str
    name: str
    description: str
    job_type: str
    priority: str | int
    tags: list[str]
    owner: str
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    config: dict[str, Any]
    progress: Progress
    reason: NotRequired[str | None]
    deadline: NotRequired[str | None]
    waiting_for: NotRequired[list[str]]
    deadline_at_risk: NotRequired[bool]
    seq: NotRequired[int]
    rollback: NotRequired[Rollback | None]
    template_id: NotRequired[str | None]
    schedule_id: NotRequired[str | None]
    duplicate_of: NotRequired[str | None]


class Page(TypedDict, Generic[T]):
    items: list[T]
    next_cursor: str | None


class ItemsAdded(TypedDict):
    batch_id: str
    added: int
    total: int


class ActionAccepted(TypedDict):
    batch_id: str
    action: str
    status: str
    plan: NotRequired[Any]


class JobError(TypedDict):
    message: str
    retryable: bool
    traceback: NotRequired[str | None]
    severity: NotRequired[str | None]
    # "class" is a keyword: read it as error.get("class").


class Attempt(TypedDict):
    attempt: int
    executor: str | None
    started_at: str | None
    finished_at: str | None
    status: str
    error: JobError | None


class JobProgressReport(TypedDict):
    percent: float | None
    message: str
    at: str


class Job(TypedDict):
    id: str
    batch_id: str
    index: int
    status: str
    attempt: int
    item: dict[str, Any]
    output: Any
    error: JobError | None
    attempts: list[Attempt]
    created_at: NotRequired[str | None]
    started_at: str | None
    finished_at: str | None
    duration_s: float | None
    progress: NotRequired[JobProgressReport | None]
    skip_reason: NotRequired[str | None]
    warnings: NotRequired[list[str]]
    resources: NotRequired[dict[str, float] | None]
    rolled_back_at: NotRequired[str | None]
    awaiting_decision: NotRequired[bool]  # failed, parked for a person's decision


class JobType(TypedDict):
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: NotRequired[dict[str, Any] | None]
    supports_rollback: NotRequired[bool]
    isolation: NotRequired[str]


class ApiKey(TypedDict):
    id: str
    name: str
    role: str
    created_at: NotRequired[str]


class CreatedKey(TypedDict):
    id: str
    key: str
    role: str
    name: NotRequired[str]


Report = dict[str, Any]
