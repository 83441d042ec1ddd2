"""Schedules: batches made on a cron schedule — list, show (with the next run times),
create, update, enable, disable, trigger, runs, delete."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from batchyard_cli.app_state import JsonFlag, state
from batchyard_cli.catalog_view import runs_table, schedule_view, schedules_table
from batchyard_cli.errors import InputError
from batchyard_cli.inputs import load_spec
from batchyard_cli.moments import parse_moment
from batchyard_cli.render import format_time

schedules_app = typer.Typer(
    help="Schedules: a batch from a template, a spec or a library consolidation on a cron "
    "schedule in a timezone.",
    no_args_is_help=True,
)

ScheduleIdArg = Annotated[str, typer.Argument(help="The schedule id (s_…).", show_default=False)]
SPEC_FIELDS = (
    "name, cron or run_at, timezone, overlap, catch_up, template_id + overrides, spec or "
    "consolidation"
)


class Overlap(enum.StrEnum):
    skip = "skip"
    queue = "queue"
    cancel_previous = "cancel_previous"


class CatchUp(enum.StrEnum):
    none = "none"
    latest = "latest"
    all = "all"


@schedules_app.command("list")
def list_schedules(
    ctx: typer.Context,
    enabled: Annotated[
        bool | None,
        typer.Option(
            "--enabled/--disabled", help="Only enabled or only disabled ones.", show_default=False
        ),
    ] = None,
    q: Annotated[str | None, typer.Option("--q", "-q", help="Text in the name.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after an earlier page.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The schedules you may see: cron, timezone, next run, last run."""
    app = state(ctx)
    page = app.client().list_schedules(enabled=enabled, q=q, limit=limit, cursor=cursor)
    if as_json:
        app.output.json(page)
    else:
        app.output.show(schedules_table(page["items"], page.get("next_cursor")))


@schedules_app.command("show")
def show_schedule(
    ctx: typer.Context, schedule_id: ScheduleIdArg, as_json: JsonFlag = False
) -> None:
    """One schedule, with its next five run times in its timezone and in local time."""
    app = state(ctx)
    schedule = app.client().get_schedule(schedule_id)
    if as_json:
        app.output.json(schedule)
    else:
        app.output.show(schedule_view(schedule))


NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="The schedule's name.")]
CronOpt = Annotated[
    str | None, typer.Option(help="5 fields (min hour day month weekday), e.g. '0 3 * * 1-5'.")
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="Instead of --cron: one run at this time (ISO, local unless it has an offset, or "
        "a span ahead: 90m, 4h, 2d), after which the schedule disables itself.",
    ),
]
TimezoneOpt = Annotated[
    str | None, typer.Option("--timezone", "--tz", help="IANA zone, e.g. Europe/Berlin.")
]
TemplateOpt = Annotated[
    str | None, typer.Option("--template", help="Make each batch from this template.")
]
OverlapOpt = Annotated[
    Overlap | None, typer.Option(help="When the previous run's batch is unfinished.")
]
CatchUpOpt = Annotated[
    CatchUp | None, typer.Option("--catch-up", help="Runs missed while no scheduler ran.")
]


def _run_at(at: str | None) -> str | None:
    return parse_moment(at, option="--at", ahead=True) if at is not None else None


def _with_flags(body: dict[str, Any], **flags: Any) -> dict[str, Any]:
    given = {
        k: (v.value if isinstance(v, enum.Enum) else v) for k, v in flags.items() if v is not None
    }
    return {**body, **given}


@schedules_app.command("create")
def create_schedule(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help=f"A schedule spec (JSON or YAML): {SPEC_FIELDS}."),
    ] = None,
    name: NameOpt = None,
    cron: CronOpt = None,
    at: AtOpt = None,
    timezone: TimezoneOpt = None,
    template: TemplateOpt = None,
    overlap: OverlapOpt = None,
    catch_up: CatchUpOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a schedule from a spec file and/or flags (flags win)."""
    app = state(ctx)
    body = load_spec(file, "a schedule spec", SPEC_FIELDS) if file else {}
    body = _with_flags(
        body,
        name=name,
        cron=cron,
        timezone=timezone,
        template_id=template,
        overlap=overlap,
        catch_up=catch_up,
        enabled=False if disabled else None,
        run_at=_run_at(at),
    )
    if at is not None:
        body.pop("cron", None)  # --at wins over a spec file's cron
    missing = [k for k in ("name",) if not body.get(k)]
    if not body.get("cron") and not body.get("run_at"):
        missing.append("--cron or --at")
    if missing:
        raise InputError(f"a schedule needs {' and '.join(missing)} (in --file or as flags)")
    if not any(body.get(k) for k in ("template_id", "spec", "consolidation")):
        raise InputError(
            "a schedule needs --template ID, or a `spec` with items or a `consolidation` of the "
            "template library in --file"
        )
    created = app.client().create_schedule(body)
    if as_json:
        app.output.json(created)
        return
    app.output.say(f"Created schedule {created['id']} ({created['name']!r}).")
    app.output.show(schedule_view(created))


@schedules_app.command("update")
def update_schedule(
    ctx: typer.Context,
    schedule_id: ScheduleIdArg,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help=f"Changes (JSON or YAML): any of {SPEC_FIELDS}."),
    ] = None,
    name: NameOpt = None,
    cron: CronOpt = None,
    at: AtOpt = None,
    timezone: TimezoneOpt = None,
    overlap: OverlapOpt = None,
    catch_up: CatchUpOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a schedule (owner or admin); a new cron or timezone counts from now; --at
    makes it a one-run schedule at that time, enabled again."""
    app = state(ctx)
    changes = load_spec(file, "schedule changes", SPEC_FIELDS) if file else {}
    changes = _with_flags(
        changes,
        name=name,
        cron=cron,
        run_at=_run_at(at),
        timezone=timezone,
        overlap=overlap,
        catch_up=catch_up,
    )
    if not changes:
        raise InputError("nothing to change: give --file or a flag such as --cron")
    updated = app.client().update_schedule(schedule_id, changes)
    if as_json:
        app.output.json(updated)
    else:
        app.output.show(schedule_view(updated))


def _toggle(ctx: typer.Context, schedule_id: str, enabled: bool, as_json: bool) -> None:
    app = state(ctx)
    schedule = app.client().set_schedule_enabled(schedule_id, enabled)
    if as_json:
        app.output.json(schedule)
        return
    if enabled:
        runs = schedule.get("next_runs") or []
        after = f"; next run {format_time(runs[0])} local time" if runs else ""
        app.output.say(f"Enabled schedule {schedule_id}{after}.")
    else:
        app.output.say(f"Disabled schedule {schedule_id}: no runs until it is enabled.")


@schedules_app.command("enable")
def enable(ctx: typer.Context, schedule_id: ScheduleIdArg, as_json: JsonFlag = False) -> None:
    """Enable a schedule: runs are due from now on (missed ones are not caught up)."""
    _toggle(ctx, schedule_id, True, as_json)


@schedules_app.command("disable")
def disable(ctx: typer.Context, schedule_id: ScheduleIdArg, as_json: JsonFlag = False) -> None:
    """Disable a schedule: no more runs until enabled."""
    _toggle(ctx, schedule_id, False, as_json)


@schedules_app.command("trigger")
def trigger(ctx: typer.Context, schedule_id: ScheduleIdArg, as_json: JsonFlag = False) -> None:
    """Run a schedule now (under its overlap policy). Exits 5 when the run made no batch."""
    app = state(ctx)
    run = app.client().trigger_schedule(schedule_id)
    if as_json:
        app.output.json(run)
    elif run.get("outcome") == "created":
        app.output.say(f"Run {run['run_id']}: created batch {run['batch_id']}.")
    else:
        app.output.say(
            f"Run {run['run_id']}: {run.get('outcome')}: {run.get('detail') or ''}".rstrip(": ")
        )
    if run.get("outcome") == "failed":
        raise typer.Exit(5)


@schedules_app.command("runs")
def runs(ctx: typer.Context, schedule_id: ScheduleIdArg, as_json: JsonFlag = False) -> None:
    """The last 50 runs of a schedule, newest first, with their batches."""
    app = state(ctx)
    found = app.client().schedule_runs(schedule_id)
    if as_json:
        app.output.json({"items": found})
    else:
        app.output.show(runs_table(found))


@schedules_app.command("delete")
def delete(ctx: typer.Context, schedule_id: ScheduleIdArg) -> None:
    """Delete a schedule (owner or admin). Its batches stay."""
    app = state(ctx)
    app.client().delete_schedule(schedule_id)
    app.output.say(f"Deleted schedule {schedule_id}.")


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules", rich_help_panel="Templates and schedules")
