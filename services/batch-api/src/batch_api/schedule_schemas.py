"""HTTP shapes of `/v1/schedules`: batches made on a cron schedule, from a template or a spec."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from batch_api.schemas import User, Visibility
from batch_api.template_schemas import Instantiate, TemplateSpec
from contracts.cron import valid_cron

Overlap = Literal["skip", "queue", "cancel_previous"]
CatchUp = Literal["none", "latest", "all"]
RunOutcome = Literal["created", "skipped", "failed"]


def _check_cron(cron: str | None) -> str | None:
    if cron is not None and not valid_cron(cron):
        raise ValueError(f"{cron!r} is not a cron expression (5 fields: min hour day month dow)")
    return cron


def _check_timezone(timezone: str | None) -> str | None:
    if timezone is None:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{timezone!r} is not a known timezone (e.g. Europe/Berlin)") from exc
    return timezone


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    cron: str = Field(min_length=1, max_length=100, examples=["0 3 * * 1-5"])
    timezone: str = Field(default="UTC", max_length=100, examples=["Europe/Berlin"])
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
    visibility: Visibility = "private"
    shared_with: list[User] = Field(default_factory=list, max_length=100)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        _check_cron(cron)
        return cron

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, timezone: str) -> str:
        _check_timezone(timezone)
        return timezone

    @model_validator(mode="after")
    def _one_source(self) -> ScheduleCreate:
        if (self.template_id is None) == (self.spec is None):
            raise ValueError("give either `template_id` or `spec`")
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
    cron: str | None = Field(default=None, min_length=1, max_length=100)
    timezone: str | None = Field(default=None, max_length=100)
    enabled: bool | None = None
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    overrides: Instantiate | None = None
    spec: TemplateSpec | None = None
    visibility: Visibility | None = None
    shared_with: list[User] | None = Field(default=None, max_length=100)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str | None) -> str | None:
        return _check_cron(cron)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, timezone: str | None) -> str | None:
        return _check_timezone(timezone)


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
    timezone: str
    enabled: bool
    overlap: Overlap
    catch_up: CatchUp
    template_id: str | None
    overrides: Instantiate | None
    spec: TemplateSpec | None
    owner: str
    visibility: Visibility
    shared_with: list[str]
    revision: int
    created_at: datetime
    updated_at: datetime | None
    next_runs: list[datetime] = Field(description="the next five due times (none if disabled)")
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
    "timezone",
    "enabled",
    "overlap",
    "catch_up",
    "template_id",
    "overrides",
    "spec",
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
