"""HTTP schemas of the batch API: `XCreate` for requests, `XPublic` for responses. They are
separate from events and from stored documents; write models reject unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from batch_api.domain.progress import RollbackStatus
from batch_api.limits import params_fit
from contracts.vocabulary import PRIORITY_LEVELS, BatchConfig, BatchStatus, PriorityName, Severity

BATCH_STATUSES: tuple[str, ...] = BatchStatus.__args__  # type: ignore[attr-defined]

MAX_INLINE_ITEMS = 10_000


Tag = Annotated[str, Field(min_length=1, max_length=100)]
# Who sees a shared resource (a batch, a template, a schedule): see `domain.sharing`.
Visibility = Literal["private", "tenant"]
User = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Priority = PriorityName | Annotated[int, Field(ge=1, le=10)]


def _params_fit(config: BatchConfig) -> BatchConfig:
    params_fit(config.params)
    return config


# A batch's config as the API takes it: its params small enough to go with every job.
SizedConfig = Annotated[BatchConfig, AfterValidator(_params_fit)]


class BatchCreate(BaseModel):
    """A new batch. With `items` (up to 10,000) it is submitted at once; with `draft: true`
    it waits in status `draft` for chunked uploads and a submit."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    job_type: str = Field(min_length=1, max_length=100)
    priority: Priority = "medium"
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    deadline: datetime | None = None
    items: list[dict[str, Any]] | None = Field(
        default=None, min_length=1, max_length=MAX_INLINE_ITEMS
    )
    draft: bool = False
    config: SizedConfig = BatchConfig()
    visibility: Visibility = Field(
        default="tenant",
        description="`tenant`: everyone in the tenant sees it; `private`: its owner, the "
        "users in `shared_with` and the tenant's admins.",
    )
    shared_with: list[User] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _items_unless_draft(self) -> BatchCreate:
        if not self.draft and not self.items:
            raise ValueError("items are required unless the batch is a draft (`draft: true`)")
        return self


class BatchUpdate(BaseModel):
    """Changes to a batch; absent fields stay. `config` only before the batch is submitted;
    `max_concurrent_jobs` until it ends."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    priority: Priority | None = None
    deadline: datetime | None = None
    max_concurrent_jobs: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Its `config.max_concurrent_jobs`, also while it runs (queued, running, "
        "paused, retrying): the jobs dispatched from then on follow it; lowering it stops no "
        "running job. Not for a sequential batch (one job at a time), nor with `config`.",
    )
    config: SizedConfig | None = None
    visibility: Visibility | None = Field(
        default=None, description="Only the owner or an admin may change who sees a batch."
    )
    shared_with: list[User] | None = Field(default=None, max_length=100)


class RollbackBody(BaseModel):
    """`dry_run` only plans; `job_ids` limits the rollback to some completed jobs."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = False
    job_ids: list[str] | None = Field(default=None, max_length=MAX_INLINE_ITEMS)
    reason: str = Field(default="", max_length=1000)
    force: bool = Field(
        default=False,
        description="Overwrite what changed after a job. Without it, a job whose effects were "
        "changed since it ran (by hand or by a later batch) refuses the whole rollback "
        "(`rollback_failed`, naming what changed), and nothing is restored.",
    )


class PlannedCompensation(BaseModel):
    job_id: str
    index: int
    finished_at: datetime | None = None
    output: dict[str, Any] | None = None


class RollbackPlan(BaseModel):
    """The completed jobs a rollback would compensate, most recently completed first."""

    jobs: list[PlannedCompensation]
    count: int
    truncated: bool = False
    check_id: str | None = Field(
        default=None,
        description="The rollback service checks this dry run as a rollback would before it "
        "changes anything (every backup against its checksum, what changed after each job): "
        "`GET /v1/batches/{id}/rollback-checks/{check_id}` says whether it would be refused.",
    )


class RefusedJob(BaseModel):
    job_id: str
    reason: str


class RollbackCheck(BaseModel):
    """A dry run checked by the rollback service: whether the rollback would go ahead."""

    check_id: str
    batch_id: str
    status: Literal["checking", "clear", "refused"] = Field(
        description="`checking` until the rollback service has planned it; `clear`: the "
        "rollback would restore `jobs` jobs; `refused`: it would change nothing, for "
        "`reason` (`refused` names the jobs)."
    )
    jobs: int | None = Field(
        default=None, description="Jobs the rollback would restore (once planned)."
    )
    reason: str | None = None
    refused: list[RefusedJob] = Field(
        default_factory=list, description="The first 20 jobs that refuse it, and why."
    )
    refused_total: int = 0
    job_ids: list[str] | None = None
    force: bool = False
    requested_by: str
    requested_at: datetime
    finished_at: datetime | None = None


class ActionAccepted(BaseModel):
    batch_id: str
    action: str
    status: str
    plan: RollbackPlan | None = None


class Progress(BaseModel):
    total: int
    pending: int = 0
    dispatched: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    cancelled: int = 0
    awaiting_decision: int = Field(
        default=0,
        description="Of `failed`, the jobs waiting for a person's decision (a consolidation's "
        "interactive conflicts): no errors of the batch; a decision runs them again.",
    )
    percent: float
    throughput_per_s: float | None = Field(
        default=None,
        description="Jobs that ran (completed, failed, skipped by their job type) per second "
        "of `active_s`: the whole run's mean. Cancelled jobs and those a stop skipped ended "
        "without running and are left out.",
    )
    pace_per_s: float | None = Field(
        default=None,
        description="Its recent pace: jobs a second over the last 30 to 60 s of active time "
        "(what its running jobs reported of themselves counted). The ETA goes at it. Null "
        "in the first 30 s of a run, when it finished, or when nothing moved in that time.",
    )
    elapsed_s: float | None = Field(default=None, description="Seconds since it started.")
    active_s: float | None = Field(
        default=None,
        description="Of `elapsed_s`, the seconds it could move: not paused, nor finished "
        "before a retry.",
    )
    eta_s: float | None = Field(
        default=None,
        description="Seconds left at its recent pace (`pace_per_s`), else at the pace of the "
        "whole run (its jobs ended and what its running jobs reported of themselves, over "
        "`active_s`); null while paused or before either.",
    )
    average_job_ms: float | None = Field(
        default=None,
        description="The mean run time of its jobs' attempts that ended (cancelled ones "
        "aside); null before the first.",
    )


class RollbackPublic(BaseModel):
    """A batch's latest rollback (dry runs are not recorded), with its progress."""

    rollback_id: str
    status: RollbackStatus
    done: int = Field(description="Jobs compensated so far (counted once per 100 or per second).")
    total: int = Field(description="Jobs the rollback compensates (0 while `planning`).")
    planning: bool = Field(
        default=False,
        description="The rollback service is still planning the rollback (reading the batch's "
        "backups and checking them): `total` is not known yet.",
    )
    percent: float
    started_at: datetime
    finished_at: datetime | None = None
    reason: str | None = Field(default=None, description="Why the rollback failed.")
    throughput_per_s: float | None = None
    eta_s: float | None = None


class BatchPublic(BaseModel):
    id: str
    name: str
    description: str
    job_type: str
    priority: PriorityName | int
    tags: list[str]
    owner: str
    status: str
    created_at: datetime
    deadline: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    config: dict[str, Any]
    progress: Progress
    reason: str | None = Field(
        default=None,
        description="Why the batch ended as it did, or what a queued batch waits for.",
    )
    waiting_for: list[str] = Field(
        default_factory=list,
        description="Batches (`config.depends_on`) this queued batch still waits for.",
    )
    deadline_at_risk: bool = Field(
        default=False,
        description="At its current throughput the batch would finish after its deadline.",
    )
    visibility: Visibility = "tenant"
    shared_with: list[str] = Field(default_factory=list)
    template_id: str | None = Field(
        default=None, description="The batch template it was made from (an instantiation)"
    )
    schedule_id: str | None = Field(default=None, description="The schedule whose run made it")
    duplicate_of: str | None = Field(default=None, description="The batch it is a copy of")
    seq: int = Field(
        default=0,
        description="The sequence number of the newest batch event this answer reflects (the "
        "live stream's `progress` frames carry the same): of two views of one batch, the one "
        "with the higher `seq` is newer.",
    )
    rollback: RollbackPublic | None = Field(
        default=None, description="The batch's latest rollback and its progress, if one started."
    )


MAX_PAGE = 500


class BatchFilters(BaseModel):
    """Filters of a batch listing; every given filter must hold."""

    status: list[str] | None = None
    priority: PriorityName | int | None = None
    job_type: str | None = None
    tag: str | None = None
    owner: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = Field(default=None, description="text in the batch's name")
    template_id: str | None = None
    schedule_id: str | None = None

    @classmethod
    def from_query(cls, *, status: str | None, priority: str | None, **rest: Any) -> BatchFilters:
        """From query parameters: `status` comma-separated, `priority` a name or 1–10.
        Raises `ValueError` naming a bad value."""
        level: PriorityName | int | None = None
        if priority:
            if priority.isdigit() and 1 <= int(priority) <= 10:
                level = int(priority)
            elif priority in PRIORITY_LEVELS:
                level = priority  # type: ignore[assignment]
            else:
                raise ValueError(
                    f"priority {priority!r} is not low, medium, high, critical or 1-10"
                )
        statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
        for s in statuses or []:
            if s not in BATCH_STATUSES:
                raise ValueError(f"status {s!r} is not one of {', '.join(BATCH_STATUSES)}")
        return cls(status=statuses, priority=level, **rest)


MAX_BULK = 1000
BulkAction = Literal["cancel", "retry", "archive", "delete", "pause", "resume"]


class BulkFilter(BaseModel):
    """Which batches a bulk operation acts on, as in a listing (every given filter holds)."""

    model_config = ConfigDict(extra="forbid")

    status: list[str] | None = Field(default=None, max_length=20)
    priority: str | None = Field(default=None, max_length=20)
    job_type: str | None = Field(default=None, max_length=100)
    tag: str | None = Field(default=None, max_length=100)
    owner: str | None = Field(default=None, max_length=200)
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = Field(default=None, max_length=200, description="text in the name")

    def filters(self) -> BatchFilters:
        """As listing filters; raises `ValueError` naming a bad value."""
        rest = self.model_dump(exclude={"status", "priority"})
        status = ",".join(self.status) if self.status else None
        return BatchFilters.from_query(status=status, priority=self.priority, **rest)


class BulkRequest(BaseModel):
    """One action on many batches: by `ids`, or on every batch matching `filter` (at most
    1,000 either way)."""

    model_config = ConfigDict(extra="forbid")

    action: BulkAction
    ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_BULK)
    filter: BulkFilter | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> BulkRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either `ids` or `filter`")
        return self


class BulkResult(BaseModel):
    """What the action did to one batch: `status` is the HTTP status the single call would
    have answered (202, 204, 404, 409...), `detail` why it was refused."""

    id: str
    ok: bool
    status: int
    batch_status: str | None = None
    detail: str | None = None


class BulkOutcome(BaseModel):
    action: BulkAction
    matched: int
    succeeded: int
    failed: int
    results: list[BulkResult]


class ItemsUpload(BaseModel):
    """A chunk of items as JSON (the alternative to `application/x-ndjson`)."""

    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_INLINE_ITEMS)


class FileAdded(BaseModel):
    """A file an upload stored, as the item it became."""

    file_id: str
    filename: str
    size: int
    content_type: str | None = None


class ItemsAdded(BaseModel):
    batch_id: str
    added: int
    total: int
    files: list[FileAdded] | None = Field(
        default=None, description="multipart uploads: the stored files, in the order sent"
    )


class BatchPage(BaseModel):
    items: list[BatchPublic]
    next_cursor: str | None = None


class JobError(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class", serialization_alias="class")
    message: str
    retryable: bool | None = None
    traceback: str | None = Field(
        default=None,
        description="For an exception the job did not mean to raise: where it was raised "
        "(the stack trace's last 4,000 characters)",
    )
    severity: Severity | None = Field(
        default=None,
        description="How bad the failure is: the job type's word, else `critical` for an "
        "exception it did not mean to raise or a crashed worker, `high` for a permanent "
        "failure, `medium` for a retryable one (None: a cancel)",
    )


class JobAttempt(BaseModel):
    attempt: int
    executor: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status: str
    error: JobError | None = None


class JobProgressReport(BaseModel):
    """What a running job last said of its progress (`ctx.report_progress` in a job type)."""

    percent: float | None = Field(default=None, description="0-100; None: not known")
    message: str = ""
    at: datetime


class JobPublic(BaseModel):
    """One job: its item, status, latest result or error and every attempt."""

    id: str
    batch_id: str
    index: int
    status: str
    attempt: int
    item: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    metrics: dict[str, float] | None = None
    error: JobError | None = None
    attempts: list[JobAttempt] = Field(default_factory=list)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    progress: JobProgressReport | None = Field(
        default=None, description="While the job runs: its attempt's latest progress report"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What a completed job noted about its item while it ran (`ctx.warn`): "
        "odd but not fatal",
    )
    resources: dict[str, float] | None = Field(
        default=None,
        description="What a completed process-isolated job's worker used: `cpu_s` (CPU "
        "seconds) and `max_rss_mb` (peak resident memory); null for jobs run inside the "
        "executor's process",
    )
    skip_reason: str | None = Field(
        default=None,
        description="Why a `skipped` job did not run or change anything: its job type's "
        "reason (`SkipJob`), or that the batch stopped at a failed job first (`stop_on_error`)",
    )
    rolled_back_at: datetime | None = Field(
        default=None,
        description="When a rollback compensated this completed job (its status stays "
        "completed: it ran; its effects were undone)",
    )
    awaiting_decision: bool = Field(
        default=False,
        description="A `failed` job whose job type stopped to wait for a person's decision "
        "(for a consolidation: a conflict in the library): not an error of the batch, and "
        "the decision runs it again. `?status=awaiting_decision` lists only these",
    )


class JobPage(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None = None


class JobActionAccepted(BaseModel):
    batch_id: str
    job_id: str
    action: str
    status: str


class JobTypePublic(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of a job's output, when the type declares one"
    )
    supports_rollback: bool = Field(
        default=False, description="whether it has backup/compensate hooks (rollback works)"
    )
    isolation: Literal["inline", "process"] = Field(
        default="inline",
        description="inline: jobs run as tasks in the executor's event loop; process: each "
        "job in a worker process under the batch's resource limits",
    )
