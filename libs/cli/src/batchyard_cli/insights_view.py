"""How batches ran, for people: a batch's analytics (durations, a throughput sparkline,
errors by class), the tenant's stats, the audit log, and the per-batch outcome of a bulk
operation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from batchyard_cli.render import (
    DASH,
    SEVERITY_STYLES,
    format_percent,
    format_rate,
    format_seconds,
    format_time,
    status_text,
)

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, its height relative to the largest: `▁` for nothing (or
    unknown), then seven steps up to `█` for the peak."""
    peak = max((v for v in values if v), default=0.0)
    line = []
    for value in values:
        if not value or value <= 0 or peak <= 0:
            line.append(SPARKS[0])
            continue
        line.append(SPARKS[1 + min(6, round(value / peak * 6))])
    return "".join(line)


def _rate(per_second: float | None) -> str:
    """Jobs per second, or per hour when under one a minute (a day's window is mostly idle)."""
    if per_second is not None and 0 < per_second < 1 / 60:
        return f"{per_second * 3600:.1f}/h"
    return format_rate(per_second)


def _pct(value: float | None) -> str:
    return DASH if value is None else format_percent(100 * value)


def analytics_view(data: Mapping[str, Any]) -> RenderableType:
    durations = data.get("durations") or {}
    parts: list[RenderableType] = [
        Text.assemble(
            ("Batch ", "bold"),
            str(data.get("batch_id", "")),
            "  ",
            status_text(str(data.get("status", ""))),
        )
    ]
    results = data.get("metrics") or {}
    if results:  # what the job type counted, over the jobs completed so far
        parts.append(Text(" · ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in results.items())))
    table = Table(title="Job durations", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    keys = ("count", "min_s", "avg_s", "p50_s", "p90_s", "p95_s", "p99_s", "max_s")
    for key in keys:
        table.add_column(key.removesuffix("_s"), justify="right")
    table.add_row(
        str(durations.get("count", 0)),
        *(format_seconds(durations.get(k)) for k in keys[1:]),
    )
    parts.append(table)
    parts.append(throughput_view(data.get("throughput") or {}))
    errors = data.get("errors") or []
    if errors:
        err = Table(
            title="Errors by class", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False
        )
        err.add_column("Error class", style="red")
        err.add_column("Severity")
        err.add_column("Failed attempts", justify="right")
        err.add_column("Retryable", justify="right")
        for entry in errors:
            severity = entry.get("severity")
            err.add_row(
                str(entry["error_class"]),
                Text(severity, style=SEVERITY_STYLES.get(severity, "")) if severity else "–",
                str(entry["count"]),
                str(entry["retryable"]),
            )
        parts.append(err)
    else:
        parts.append(Text("No errors.", style="green"))
    retries = data.get("retries") or {}
    parts.append(
        Text(
            f"Attempts {retries.get('attempts', 0)} · jobs retried {retries.get('retried_jobs', 0)}"
            f" · extra attempts {retries.get('extra_attempts', 0)}"
        )
    )
    return Group(*parts)


def throughput_view(throughput: Mapping[str, Any]) -> RenderableType:
    points = throughput.get("points") or []
    if not points or not throughput.get("bucket_s"):
        return Text("Throughput: no job has finished yet.", style="dim")
    rates = [float(p.get("jobs_per_s") or 0) for p in points]
    peak = max(rates)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Throughput", Text(sparkline(rates), style="cyan"))
    grid.add_row(
        "",
        Text(
            f"{format_time(points[0].get('at'))} → {format_time(points[-1].get('at'))}, "
            f"{len(points)} × {throughput['bucket_s']}s, peak {format_rate(peak)}",
            style="dim",
        ),
    )
    return grid


def stats_view(stats: Mapping[str, Any]) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Window", f"{format_time(stats.get('since'))} → {format_time(stats.get('until'))}")
    grid.add_row("Batches", str(stats.get("batches", 0)))
    by_status = stats.get("batches_by_status") or {}
    if by_status:
        line = Text()
        for index, (status, count) in enumerate(sorted(by_status.items(), key=lambda kv: -kv[1])):
            if index:
                line.append(" · ")
            line.append(f"{count} ")
            line.append_text(status_text(status))
        grid.add_row("By status", line)
    grid.add_row(
        "Jobs",
        f"{stats.get('jobs_completed', 0)} completed · {stats.get('jobs_failed', 0)} failed · "
        f"{stats.get('jobs_cancelled', 0)} cancelled · {stats.get('jobs_skipped', 0)} skipped",
    )
    grid.add_row("Success rate", _pct(stats.get("success_rate")))
    grid.add_row("Throughput", _rate(stats.get("jobs_per_s")))
    types = stats.get("job_types") or {}
    if not types:
        return grid
    table = Table(title="By job type", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in ("Job type", "Batches", "Completed", "Failed", "Cancelled", "Success", "Rate"):
        table.add_column(column, justify="left" if column == "Job type" else "right")
    for name, entry in sorted(types.items()):
        table.add_row(
            name,
            str(entry.get("batches", 0)),
            str(entry.get("jobs_completed", 0)),
            str(entry.get("jobs_failed", 0)),
            str(entry.get("jobs_cancelled", 0)),
            _pct(entry.get("success_rate")),
            _rate(entry.get("jobs_per_s")),
        )
    return Group(grid, table)


def audit_table(entries: Sequence[Mapping[str, Any]], next_cursor: str | None) -> RenderableType:
    if not entries:
        return Text("No audit records match.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("When", "User", "Role", "Method", "Action", "Resource", "Status"):
        table.add_column(column, no_wrap=column != "Resource", overflow="fold")
    for entry in entries:
        status = Text(
            f"{entry.get('status')} {entry.get('outcome')}",
            style="green" if entry.get("outcome") == "ok" else "red",
        )
        table.add_row(
            format_time(entry.get("at")),
            str(entry.get("user", "")),
            str(entry.get("role", "")),
            str(entry.get("method", "")),
            str(entry.get("action", "")),
            str(entry.get("resource") or DASH),
            status,
        )
    if next_cursor:
        return Group(table, Text(f"More records: --cursor {next_cursor}", style="dim"))
    return table


def bulk_view(outcome: Mapping[str, Any]) -> RenderableType:
    results = outcome.get("results") or []
    summary = Text(
        f"{outcome.get('action')}: {outcome.get('matched', 0)} matched, "
        f"{outcome.get('succeeded', 0)} succeeded, {outcome.get('failed', 0)} failed",
        style="bold red" if outcome.get("failed") else "bold green",
    )
    if not results:
        return summary
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Batch", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("HTTP", justify="right")
    table.add_column("Batch status", no_wrap=True)
    table.add_column("Detail", overflow="fold")
    for result in results:
        ok = bool(result.get("ok"))
        table.add_row(
            str(result.get("id", "")),
            Text("ok" if ok else "refused", style="green" if ok else "bold red"),
            str(result.get("status", "")),
            status_text(str(result["batch_status"])) if result.get("batch_status") else Text(DASH),
            str(result.get("detail") or ""),
        )
    return Group(table, summary)
