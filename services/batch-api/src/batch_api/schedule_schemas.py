"""HTTP shapes of `/v1/schedules`: batches made on a cron schedule, or once at a given time,
from a template or a spec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from batch_api.library_schemas import ConsolidationRequest
from batch_api.schemas import User, Visibility
from batch_api.template_schemas import Instantiate, TemplateSpec
from contracts.cron import valid_cron

Overlap = Literal["skip", "queue", "cancel_previous"]
CatchUp = Literal["none", "latest", "all"]
RunOutcome = Literal["created", "skipped", "failed"]


def _check_cron(cron: str) -> str:
    if not valid_cron(cron):
        raise ValueError(f"{cron!r} is not a cron expression (5 fields: min hour day month dow)")
    return cron


def _check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{timezone!r} is not a known timezone (e.g. Europe/Berlin)") from exc
    return timezone


ONCE_AHEAD = timedelta(days=365)  # a once-schedule's time is a cron without a year


def _check_run_at(run_at: datetime) -> datetime:
    """A once-schedule's time: aware (UTC if it has no offset), ahead, within a year."""
    at = run_at if run_at.tzinfo else run_at.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if at <= now:
        raise ValueError("must be in the future")
    if at > now + ONCE_AHEAD:
        raise ValueError("must be within a year")
    return at


Cron = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_check_cron)]
Timezone = Annotated[str, Field(max_length=100), AfterValidator(_check_timezone)]
RunAt = Annotated[datetime, AfterValidator(_check_run_at)]


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    cron: Cron | None = Field(
        default=None,
        examples=["0 3 * * 1-5"],
        description="when runs are due (5 fields; a 6th gives seconds); or give `run_at`",
    )
    run_at: RunAt | None = Field(
        default=None,
        description="instead of `cron`: one run at this time (within a year; UTC if it has "
        "no offset), after which the schedule disables itself; a run missed while no "
        "scheduler ran is made when one is back",
    )
    timezone: Timezone = Field(default="UTC", examples=["Europe/Berlin"])
    enabled: bool = True
    overlap: Overlap = Field(
        default="skip",
        description="when the previous run's batch is still unfinished: skip this run, queue "
        "it behind the previous one (it waits for it to finish), or cancel the previous one",
    )
    catch_up: CatchUp = Field(
        default="none",
        description="runs missed while no scheduler ran: none, only the latest, or all",
    )
    template_id: str | None = Field(default=None, description="make each batch from this template")
    overrides: Instantiate | None = Field(
        default=None, description="with `template_id`: what each batch changes of it"
    )
    spec: TemplateSpec | None = Field(
        default=None, description="instead of a template: the batch spec itself (with items)"
    )
    consolidation: ConsolidationRequest | None = Field(
        default=None,
        description="instead of a template or spec: a consolidation of the template library, "
        "planned afresh at each run (as `POST /v1/library/consolidations` does), so a filter or "
        "the whole library takes in templates added since; `name` is the schedule's",
    )
    visibility: Visibility = "private"
    shared_with: list[User] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _one_source(self) -> ScheduleCreate:
        if (self.cron is None) == (self.run_at is None):
            raise ValueError("give either `cron` (runs again and again) or `run_at` (one run)")
        sources = (self.template_id, self.spec, self.consolidation)
        if sum(source is not None for source in sources) != 1:
            raise ValueError("give one of `template_id`, `spec` or `consolidation`")
        if self.spec is not None and not self.spec.items:
            raise ValueError("`spec.items` is required: a schedule has no one to bring items")
        if self.overrides is not None and self.template_id is None:
            raise ValueError("`overrides` go with `template_id`")
        return self


class ScheduleUpdate(BaseModel):
    """Changes to a schedule; absent fields stay. Owner or admin only."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    cron: Cron | None = Field(default=None, description="makes it recurring")
    run_at: RunAt | None = Field(
        default=None, description="makes it a one-run schedule at this time, enabled again"
    )
    timezone: Timezone | None = None
    enabled: bool | None = None
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    overrides: Instantiate | None = None
    spec: TemplateSpec | None = None
    consolidation: ConsolidationRequest | None = None
    visibility: Visibility | None = None
    shared_with: list[User] | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _not_both(self) -> ScheduleUpdate:
        if self.cron is not None and self.run_at is not None:
            raise ValueError("give `cron` or `run_at`, not both")
        return self


class ScheduleRun(BaseModel):
    run_id: str
    run_at: datetime = Field(description="the time the run was due (or asked for, if manual)")
    trigger: Literal["cron", "manual"]
    missed: bool = False
    outcome: RunOutcome
    batch_id: str | None = None
    detail: str | None = None
    at: datetime = Field(description="when batch-api handled the run")


class SchedulePublic(BaseModel):
    id: str
    name: str
    description: str
    cron: str
    run_at: datetime | None = Field(
        default=None, description="a one-run schedule's time (its `cron` names it too)"
    )
    timezone: str
    enabled: bool
    overlap: Overlap
    catch_up: CatchUp
    template_id: str | None
    overrides: Instantiate | None
    spec: TemplateSpec | None
    consolidation: ConsolidationRequest | None = None
    owner: str
    visibility: Visibility
    shared_with: list[str]
    revision: int
    created_at: datetime
    updated_at: datetime | None
    next_runs: list[datetime] = Field(
        description="the next five due times (none if disabled; one for a one-run schedule)"
    )
    run_count: int
    last_run: ScheduleRun | None

    @classmethod
    def of(cls, doc: dict[str, Any], next_runs: list[datetime]) -> SchedulePublic:
        runs = doc.get("runs") or []
        return cls(
            id=doc["_id"],
            next_runs=next_runs,
            run_count=int(doc.get("run_count") or 0),
            last_run=runs[-1] if runs else None,
            **{k: doc.get(k) for k in _STORED},
        )


_STORED = (
    "name",
    "description",
    "cron",
    "run_at",
    "timezone",
    "enabled",
    "overlap",
    "catch_up",
    "template_id",
    "overrides",
    "spec",
    "consolidation",
    "owner",
    "visibility",
    "shared_with",
    "revision",
    "created_at",
    "updated_at",
)


class SchedulePage(BaseModel):
    items: list[SchedulePublic]
    next_cursor: str | None = None


class ScheduleRuns(BaseModel):
    items: list[ScheduleRun] = Field(description="the last 50 runs, newest first")
