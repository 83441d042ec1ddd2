"""Batch templates and schedules for people: tables, one template or schedule in full, and
a schedule's next run times in its own timezone and in local time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from batchyard_cli.render import DASH, _compact, _flatten, format_time

OUTCOME_STYLES = {"created": "green", "skipped": "yellow", "failed": "bold red"}


def templates_table(
    templates: Sequence[Mapping[str, Any]], next_cursor: str | None
) -> RenderableType:
    """Templates grouped by category (categories in name order, newest first within one)."""
    if not templates:
        return Text("No templates match.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Category", style="bold", no_wrap=True)
    table.add_column("ID", no_wrap=True)
    table.add_column("Name", min_width=12, max_width=34, overflow="fold")
    table.add_column("Job type", no_wrap=True)
    table.add_column("Items", justify="right")
    table.add_column("Visibility", no_wrap=True)
    table.add_column("Owner", no_wrap=True)
    table.add_column("Used", justify="right")
    ordered = sorted(templates, key=lambda t: str(t.get("category", "")))
    previous = None
    for template in ordered:
        category = str(template.get("category", ""))
        spec = template.get("spec") or {}
        items = spec.get("items")
        table.add_row(
            category if category != previous else "",
            str(template["id"]),
            str(template["name"]),
            str(spec.get("job_type", "")),
            str(len(items)) if items else "per use",
            _visibility(template),
            str(template.get("owner", "")),
            str(template.get("usage_count", 0)),
        )
        previous = category
    if next_cursor:
        return Group(table, Text(f"More templates: --cursor {next_cursor}", style="dim"))
    return table


def _visibility(record: Mapping[str, Any]) -> str:
    shared = record.get("shared_with") or []
    text = str(record.get("visibility", "private"))
    return f"{text} +{len(shared)}" if shared else text


def template_view(template: Mapping[str, Any]) -> RenderableType:
    spec = template.get("spec") or {}
    grid = _grid()
    grid.add_row("Template", f"{template['id']}  {template['name']}")
    if template.get("description"):
        grid.add_row("Description", str(template["description"]))
    grid.add_row("Category", str(template.get("category", "")))
    grid.add_row("Owner", str(template.get("owner", "")))
    grid.add_row("Visibility", str(template.get("visibility", "")))
    grid.add_row("Shared with", ", ".join(template.get("shared_with") or []) or DASH)
    grid.add_row("Job type", str(spec.get("job_type", "")))
    grid.add_row("Priority", str(spec.get("priority", "")))
    if spec.get("tags"):
        grid.add_row("Tags", ", ".join(spec["tags"]))
    items = spec.get("items")
    grid.add_row("Items", f"{len(items)} (each use runs them)" if items else "given at each use")
    config = _flatten(spec.get("config") or {})
    shown = {k: v for k, v in config.items() if v not in (None, [], {})}
    if shown:
        grid.add_row("Config", ", ".join(f"{k}={_compact(v)}" for k, v in shown.items()))
    grid.add_row(
        "Used",
        f"{template.get('usage_count', 0)} times, last {format_time(template.get('last_used_at'))}",
    )
    grid.add_row("Created", format_time(template.get("created_at")))
    grid.add_row("Updated", format_time(template.get("updated_at")))
    return grid


def categories_table(categories: Sequence[Mapping[str, Any]]) -> RenderableType:
    if not categories:
        return Text("No templates yet.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Category", style="bold")
    table.add_column("Templates", justify="right")
    for entry in categories:
        table.add_row(str(entry["category"]), str(entry["templates"]))
    return table


def schedules_table(
    schedules: Sequence[Mapping[str, Any]], next_cursor: str | None
) -> RenderableType:
    if not schedules:
        return Text("No schedules match.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ID", no_wrap=True, style="bold")
    table.add_column("Name", min_width=20, max_width=30, overflow="fold")
    table.add_column("When", no_wrap=True)
    table.add_column("On", no_wrap=True)
    table.add_column("Next (local)", no_wrap=True)
    table.add_column("Last run", no_wrap=True)
    table.add_column("Runs", justify="right")
    for schedule in schedules:
        next_runs = schedule.get("next_runs") or []
        table.add_row(
            str(schedule["id"]),
            str(schedule["name"]),
            Text.assemble(_when(schedule), "\n", (str(schedule["timezone"]), "dim")),
            Text("yes", style="green") if schedule.get("enabled") else Text("no", style="dim"),
            _short_time(next_runs[0]) if next_runs else DASH,
            _last_run(schedule.get("last_run")),
            str(schedule.get("run_count", 0)),
        )
    if next_cursor:
        return Group(table, Text(f"More schedules: --cursor {next_cursor}", style="dim"))
    return table


def _last_run(run: Mapping[str, Any] | None) -> Text:
    if not run:
        return Text(DASH)
    outcome = str(run.get("outcome", ""))
    return Text(
        f"{outcome} {_short_time(run.get('run_at'))}", style=OUTCOME_STYLES.get(outcome, "")
    )


def _short_time(value: Any) -> str:
    """`11-24 07:30` in local time: enough in a table row (the year is rarely in doubt)."""
    full = format_time(str(value)) if value else DASH
    return full[5:16] if len(full) >= 16 else full


def in_zone(moment: str, zone: str) -> str:
    """`moment` (ISO) as wall-clock time in `zone`, with the zone's abbreviation."""
    try:
        at = datetime.fromisoformat(moment)
        tz = ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        return moment
    local = at.astimezone(tz)
    return f"{local:%a %Y-%m-%d %H:%M:%S} {local.tzname() or zone}"


def local_time(moment: str) -> str:
    """`moment` (ISO) as wall-clock time in this machine's zone, with its abbreviation."""
    try:
        local = datetime.fromisoformat(moment).astimezone()
    except ValueError:
        return moment
    return f"{local:%a %Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()


def next_runs_table(schedule: Mapping[str, Any]) -> RenderableType:
    runs = schedule.get("next_runs") or []
    if not runs:
        reason = "disabled" if not schedule.get("enabled") else "no future time matches"
        return Text(f"No next runs ({reason}).", style="dim")
    zone = str(schedule.get("timezone", "UTC"))
    table = Table(title="Next runs", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column(f"In {zone}", no_wrap=True)
    table.add_column("Local time", no_wrap=True)
    for moment in runs[:5]:
        table.add_row(in_zone(str(moment), zone), local_time(str(moment)))
    return table


def _when(schedule: Mapping[str, Any]) -> str:
    """A recurring schedule's cron; a one-run schedule's time."""
    if schedule.get("run_at"):
        return f"once, {_short_time(str(schedule['run_at']))}"
    return str(schedule["cron"])


def schedule_view(schedule: Mapping[str, Any]) -> RenderableType:
    grid = _grid()
    grid.add_row("Schedule", f"{schedule['id']}  {schedule['name']}")
    if schedule.get("description"):
        grid.add_row("Description", str(schedule["description"]))
    if schedule.get("run_at"):
        grid.add_row("When", f"{_when(schedule)} (local time), then it rests")
    else:
        grid.add_row("Cron", f"{schedule['cron']}  in {schedule['timezone']}")
    grid.add_row("Enabled", "yes" if schedule.get("enabled") else "no")
    grid.add_row("Overlap", str(schedule.get("overlap", "")))
    grid.add_row("Catch up", str(schedule.get("catch_up", "")))
    if schedule.get("template_id"):
        overrides = {k: v for k, v in (schedule.get("overrides") or {}).items() if v is not None}
        if isinstance(overrides.get("items"), list):
            overrides["items"] = f"{len(overrides['items'])} items"
        source = f"template {schedule['template_id']}"
        if overrides:
            source += f" with {_compact(overrides)}"
    elif schedule.get("consolidation"):
        wanted = schedule["consolidation"]
        narrowed = {k: v for k, v in (wanted.get("filter") or {}).items() if v}
        if wanted.get("template_ids"):
            scope = f"{len(wanted['template_ids'])} chosen templates"
        else:
            scope = f"the templates {_compact(narrowed)}" if narrowed else "the whole library"
        operation = wanted.get("operation", "merge")
        source = f"a consolidation ({operation}) of {scope}, planned at each run"
    else:
        spec = schedule.get("spec") or {}
        source = f"spec: {spec.get('job_type', '')}, {len(spec.get('items') or [])} items"
    grid.add_row("Makes", source)
    grid.add_row("Owner", str(schedule.get("owner", "")))
    grid.add_row("Visibility", _visibility(schedule))
    grid.add_row("Runs", str(schedule.get("run_count", 0)))
    grid.add_row("Last run", _last_run(schedule.get("last_run")))
    return Group(grid, Text(""), next_runs_table(schedule))


def runs_table(runs: Sequence[Mapping[str, Any]]) -> RenderableType:
    if not runs:
        return Text("No runs yet.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Due", no_wrap=True)
    table.add_column("Trigger", no_wrap=True)
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Batch", no_wrap=True)
    table.add_column("Detail", max_width=60, overflow="fold")
    for run in runs:
        outcome = str(run.get("outcome", ""))
        trigger = str(run.get("trigger", ""))
        if run.get("missed"):
            trigger += " (missed)"
        table.add_row(
            format_time(run.get("run_at")),
            trigger,
            Text(outcome, style=OUTCOME_STYLES.get(outcome, "")),
            str(run.get("batch_id") or DASH),
            str(run.get("detail") or ""),
        )
    return table


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(max_width=100)
    return grid


# -- the template library -----------------------------------------------------------------

LIBRARY_STATUS_STYLES = {"active": "green", "merged": "cyan", "archived": "dim"}


def library_table(
    templates: Sequence[Mapping[str, Any]], next_cursor: str | None
) -> RenderableType:
    if not templates:
        return Text("No library templates match.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ID", no_wrap=True, style="bold")
    table.add_column("Name", min_width=16, max_width=40, overflow="fold")
    table.add_column("Category", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Version", justify="right")
    table.add_column("Updated", no_wrap=True)
    for template in templates:
        status = str(template.get("status", ""))
        if status == "merged" and template.get("canonical_id"):
            shown = Text.assemble(("merged", "cyan"), (f" into {template['canonical_id']}", "dim"))
        else:
            shown = Text(status, style=LIBRARY_STATUS_STYLES.get(status, ""))
        if template.get("defects"):  # a document written outside the API
            shown.append(" · not a whole template", style="red")
        table.add_row(
            str(template["id"]),
            str(template["name"]),
            str(template.get("category", "")),
            shown,
            str(template.get("version", "")),
            _short_time(template.get("updated_at")),
        )
    if next_cursor:
        return Group(table, Text(f"More templates: --cursor {next_cursor}", style="dim"))
    return table


def library_template_view(template: Mapping[str, Any]) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Template", str(template["id"]))
    head.add_row("Name", str(template["name"]))
    head.add_row("Category", str(template.get("category", "")))
    status = str(template.get("status", ""))
    canonical = template.get("canonical_id")
    head.add_row("Status", f"{status} into {canonical}" if canonical else status)
    head.add_row("Variables", ", ".join(template.get("variables") or []) or DASH)
    head.add_row("Tags", ", ".join(template.get("tags") or []) or DASH)
    head.add_row("Version", str(template.get("version", "")))
    head.add_row("Updated", format_time(template.get("updated_at")))
    if template.get("defects"):
        head.add_row(
            Text("Defects", style="bold red"),
            Text(
                "; ".join(template["defects"])
                + " (written outside the API; a consolidation refuses it until `batchyard "
                f"library update {template['id']}` gives what it lacks, or `library delete`)",
                style="red",
            ),
        )
    return Group(head, Text(""), Text(str(template.get("body", ""))))


def conflicts_table(conflicts: Sequence[Mapping[str, Any]]) -> RenderableType:
    if not conflicts:
        return Text("No conflicts.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Conflict", no_wrap=True, style="bold")
    table.add_column("Name", max_width=30, overflow="fold")
    table.add_column("Templates")
    table.add_column("Status", no_wrap=True)
    table.add_column("Kept", no_wrap=True)
    for conflict in conflicts:
        waiting = conflict.get("status") == "awaiting_decision"
        decision = conflict.get("decision") or {}
        table.add_row(
            str(conflict["id"]),
            str(conflict.get("name", "")),
            "\n".join(conflict.get("template_ids") or []),
            Text("awaiting a decision", style="yellow") if waiting else Text("decided"),
            str(decision.get("keep") or DASH),
        )
    return table
