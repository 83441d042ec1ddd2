"""`/v1/schedules`: batches made on a cron schedule — create, list, read (with the next five
run times), change, enable, disable, delete, trigger now, and the run history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from batch_api.api.deps import CurrentPrincipal
from batch_api.api.problems import Problem
from batch_api.handlers.schedules import ScheduleService
from batch_api.schedule_schemas import (
    ScheduleCreate,
    SchedulePage,
    SchedulePublic,
    ScheduleRun,
    ScheduleRuns,
    ScheduleUpdate,
)
from contracts.cron import next_times

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])
MAX_PAGE = 500


async def schedule_service(request: Request) -> ScheduleService:
    service: ScheduleService = request.app.state.schedules
    return service


Schedules = Annotated[ScheduleService, Depends(schedule_service)]


@router.post("", status_code=201, response_model=SchedulePublic)
async def create_schedule(
    body: ScheduleCreate, who: CurrentPrincipal, schedules: Schedules, response: Response
) -> SchedulePublic:
    """A schedule owned by the caller: `cron` (5 fields) in `timezone`, making each run's batch
    from `template_id` (with `overrides`) or from `spec`. Its runs are fired by the scheduler's
    leader only; `overlap` and `catch_up` say what happens to runs that meet an unfinished
    previous run or were missed while no scheduler ran."""
    created = await schedules.create(body, who)
    response.headers["Location"] = f"/v1/schedules/{created.id}"
    return created


@router.get("", response_model=SchedulePage)
async def list_schedules(
    who: CurrentPrincipal,
    schedules: Schedules,
    enabled: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="text in the name")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> SchedulePage:
    """Schedules the caller may see, newest first."""
    return await schedules.page(who, enabled=enabled, q=q, limit=limit, cursor=cursor)


class CronPreview(BaseModel):
    cron: str
    timezone: str
    next_runs: list[datetime] = Field(description="The next run times, in UTC.")


@router.get("/preview", response_model=CronPreview)
async def preview_cron(
    who: CurrentPrincipal,
    cron: Annotated[str, Query(min_length=1, max_length=100, examples=["0 3 * * 1-5"])],
    timezone: Annotated[str, Query(max_length=100)] = "UTC",
    count: Annotated[int, Query(ge=1, le=20)] = 5,
) -> CronPreview:
    """When a schedule with this cron expression and timezone would run next (a 422 problem
    for an expression or timezone that is not valid): what a form shows while one types."""
    try:
        checked = ScheduleCreate.model_validate(
            {"name": "preview", "cron": cron, "timezone": timezone, "template_id": "preview"}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Problem(
            422,
            "Invalid schedule",
            str(first["msg"]).removeprefix("Value error, "),
            kind="invalid-request",
            errors=[{"loc": ["query", *first["loc"]], "msg": first["msg"]}],
        ) from exc
    runs = next_times(cron, checked.timezone, datetime.now(UTC), count)
    return CronPreview(cron=cron, timezone=checked.timezone, next_runs=runs)


@router.get("/{schedule_id}", response_model=SchedulePublic)
async def get_schedule(
    schedule_id: str, who: CurrentPrincipal, schedules: Schedules
) -> SchedulePublic:
    return schedules.public(await schedules.load(schedule_id, who))


@router.patch("/{schedule_id}", response_model=SchedulePublic)
async def update_schedule(
    schedule_id: str, body: ScheduleUpdate, who: CurrentPrincipal, schedules: Schedules
) -> SchedulePublic:
    """Owner or admin. A new cron, timezone or enabling counts from now (no catch-up)."""
    return await schedules.update(schedule_id, body, who)


@router.post("/{schedule_id}/enable", response_model=SchedulePublic)
async def enable_schedule(
    schedule_id: str, who: CurrentPrincipal, schedules: Schedules
) -> SchedulePublic:
    return await schedules.update(schedule_id, ScheduleUpdate(enabled=True), who)


@router.post("/{schedule_id}/disable", response_model=SchedulePublic)
async def disable_schedule(
    schedule_id: str, who: CurrentPrincipal, schedules: Schedules
) -> SchedulePublic:
    return await schedules.update(schedule_id, ScheduleUpdate(enabled=False), who)


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(
    schedule_id: str, who: CurrentPrincipal, schedules: Schedules
) -> Response:
    """Owner or admin. Its batches stay."""
    await schedules.delete(schedule_id, who)
    return Response(status_code=204)


@router.post("/{schedule_id}/trigger", status_code=202, response_model=ScheduleRun)
async def trigger_schedule(
    schedule_id: str, who: CurrentPrincipal, schedules: Schedules
) -> ScheduleRun:
    """A run now (also of a disabled schedule), under the same overlap policy as due runs:
    `outcome` says whether a batch was `created` (its `batch_id`), `skipped` or `failed`."""
    return await schedules.trigger(schedule_id, who)


@router.get("/{schedule_id}/runs", response_model=ScheduleRuns)
async def schedule_runs(
    schedule_id: str, who: CurrentPrincipal, schedules: Schedules
) -> ScheduleRuns:
    """The last 50 runs, newest first."""
    return await schedules.runs(schedule_id, who)
