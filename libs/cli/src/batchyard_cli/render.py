"""How answers look on a terminal: rich tables and panels for people, exact JSON for `--json`,
and error messages built from problem details. Functions here build renderables or strings;
`Output` is the only thing that writes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from batchyard_cli.errors import ApiError, BatchyardError, Unauthorized
from batchyard_cli.exit_codes import FINAL_STATUSES
from batchyard_cli.resources import ApiKey, Batch, Job, JobType, Progress

STATUS_STYLES: dict[str, str] = {
    "draft": "dim",
    "uploading": "cyan",
    "queued": "cyan",
    "running": "bold blue",
    "paused": "yellow",
    "retrying": "magenta",
    "rolling_back": "magenta",
    "completed": "bold green",
    "completed_with_errors": "bold yellow",
    "failed": "bold red",
    "cancelled": "red",
    "rolled_back": "yellow",
    "rollback_failed": "bold red",
    "archived": "dim",
    "pending": "dim",
    "dispatched": "cyan",
    "skipped": "dim",
    "awaiting decision": "yellow",  # a failed job parked for a person's decision
}
DASH = "–"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def format_percent(percent: float | None) -> str:
    """`42.5%` with one decimal that never claims all or none when it is not so: 99.96
    reads `99.9%` (not `100.0%`, with a job still to run or one failed in 30,000), 0.04
    reads `0.1%`; a dash for unknown."""
    if percent is None:
        return DASH
    shown = round(percent, 1)
    if shown >= 100 > percent:
        shown = 99.9
    elif shown <= 0 < percent:
        shown = 0.1
    return f"{shown:.1f}%"


def format_duration(seconds: float | None) -> str:
    """`4.2s`, `42s`, `3m 05s`, `2h 03m`; a dash for unknown."""
    if seconds is None or seconds < 0:
        return DASH
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def format_seconds(value: float | None) -> str:
    """Durations down to milliseconds (no-op jobs take a few): `3ms`, `501ms`, `4.2s`."""
    if value is None:
        return DASH
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return format_duration(value)


def format_rate(per_second: float | None) -> str:
    """Jobs per second: `3.5/s`, `120/s`, `12.3k/s`; a dash for unknown."""
    if per_second is None:
        return DASH
    if per_second >= 10_000:
        return f"{per_second / 1000:.1f}k/s"
    if per_second >= 100:
        return f"{per_second:.0f}/s"
    return f"{per_second:.1f}/s"


def format_time(value: str | None) -> str:
    """An ISO timestamp in local time, to the second."""
    if not value:
        return DASH
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def finished_count(progress: Mapping[str, Any]) -> int:
    return sum(int(progress.get(k) or 0) for k in ("completed", "failed", "skipped", "cancelled"))


def counts_summary(progress: Mapping[str, Any]) -> str:
    """`12/20 done · 2 failed · 3 running`: the counts a person looks for first."""
    parts = [f"{finished_count(progress)}/{progress.get('total', 0)} done"]
    for key in ("failed", "retrying", "running", "cancelled", "skipped"):
        if progress.get(key):
            parts.append(f"{progress[key]} {key}")
            if key == "failed" and progress.get("awaiting_decision"):
                parts[-1] += f" ({progress['awaiting_decision']} awaiting a decision)"
    return " · ".join(parts)


WIDE = 120
"""From this many columns on, batch tables add the job type and the creation time."""


def batches_table(
    batches: Sequence[Batch], next_cursor: str | None = None, width: int = WIDE
) -> RenderableType:
    if not batches:
        return Text("No batches match.", style="dim")
    wide = width >= WIDE
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ID", no_wrap=True, style="bold")
    table.add_column("Name", min_width=8, max_width=30, overflow="fold")
    if wide:
        table.add_column("Job type", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Progress", justify="right", no_wrap=True)
    table.add_column("Failed", justify="right", no_wrap=True)
    if wide:
        table.add_column("Created", no_wrap=True)
    for batch in batches:
        progress = batch["progress"]
        row: list[RenderableType] = [batch["id"], batch["name"]]
        if wide:
            row.append(batch["job_type"])
        row += [
            status_text(batch["status"]) + policy_marks(batch),
            f"{format_percent(progress['percent'])} {finished_count(progress)}/{progress['total']}",
            failed_cell(progress),
        ]
        if wide:
            row.append(format_time(batch.get("created_at"))[:16])
        table.add_row(*row)
    if next_cursor:
        return Group(table, Text(f"More batches: --cursor {next_cursor}", style="dim"))
    return table


def failures_of(progress: Progress | Mapping[str, Any]) -> tuple[int, int]:
    """A batch's failed jobs apart: the errors, and those parked for a person's decision
    (counted in `failed` by the API, but no error of the batch)."""
    awaiting = int(progress.get("awaiting_decision") or 0)
    return int(progress.get("failed") or 0) - awaiting, awaiting


def failed_cell(progress: Progress | Mapping[str, Any]) -> Text:
    """The failed jobs of a batch row, its jobs parked for a person's decision said apart:
    `2`, or `0 · 1 awaiting`."""
    failed, awaiting = failures_of(progress)
    cell = Text(str(failed), style="red" if failed else "")
    if awaiting:
        cell.append(f" · {awaiting} awaiting", style="yellow")
    return cell


def progress_bar(progress: Progress | Mapping[str, Any], width: int = 30) -> RenderableType:
    total = int(progress.get("total") or 0)
    return ProgressBar(total=max(total, 1), completed=finished_count(progress), width=width)


def batch_view(batch: Batch) -> RenderableType:
    """One batch: identity, status, progress with every count, timing, config."""
    progress = batch["progress"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(max_width=100)
    head.add_row("Batch", f"{batch['id']}  {batch['name']}")
    if batch.get("description"):
        head.add_row("Description", batch["description"])
    head.add_row("Status", _status_with_reason(batch))
    waiting = batch.get("waiting_for") or []
    if waiting and batch["status"] == "queued":
        head.add_row("Waiting for", Text(", ".join(waiting), style="yellow"))
    awaiting = int(progress.get("awaiting_decision") or 0)
    if awaiting:  # its job type parked part of its work for a person
        where = (
            f"batchyard library conflicts {batch['id']} --waiting"
            if batch["job_type"] == "templates.consolidate"
            else "once decided, run each again: batchyard jobs retry JOB_ID"
        )
        head.add_row("Decide", Text(f"{awaiting} job(s) await a decision: {where}", style="yellow"))
    deadline = batch.get("deadline") or (batch.get("config") or {}).get("deadline")
    if deadline:
        when = Text(format_time(deadline))
        if _at_risk(batch):
            when.append("  at risk: at this pace it finishes after the deadline", style="bold red")
        head.add_row("Deadline", when)
    head.add_row("Job type", batch["job_type"])
    head.add_row("Priority", str(batch.get("priority", "")))
    if batch.get("tags"):
        head.add_row("Tags", ", ".join(batch["tags"]))
    head.add_row("Owner", batch.get("owner") or DASH)
    origin = [
        f"{label} {made_from}"
        for label, made_from in (
            ("template", batch.get("template_id")),
            ("schedule", batch.get("schedule_id")),
            ("copy of", batch.get("duplicate_of")),
        )
        if made_from
    ]
    if origin:
        head.add_row("Made from", ", ".join(origin))
    head.add_row("Created", format_time(batch.get("created_at")))
    head.add_row("Started", format_time(batch.get("started_at")))
    head.add_row("Finished", format_time(batch.get("finished_at")))
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        progress_bar(progress),
        Text(format_percent(progress["percent"]), style="bold"),
        Text(counts_summary(progress)),
    )
    head.add_row("Progress", bar)
    rate = format_rate(progress.get("throughput_per_s"))
    elapsed = format_duration(progress.get("elapsed_s")) + _resting(progress)
    average = progress.get("average_job_ms")
    per_job = "" if average is None else f" · {format_seconds(average / 1000)} a job"
    if batch.get("finished_at"):
        head.add_row("Timing", f"took {elapsed} · {rate}{per_job}")
    else:
        pace = progress.get("pace_per_s")
        if pace is not None:  # the ETA goes at it; the whole run's mean beside it
            rate = f"{format_rate(pace)} lately ({rate} overall)"
        eta = format_duration(progress.get("eta_s"))
        head.add_row("Timing", f"elapsed {elapsed} · {rate} · ETA {eta}{per_job}")
    rollback = batch.get("rollback")
    if rollback:
        head.add_row("Rollback", rollback_text(rollback))
    config = {k: v for k, v in _flatten(batch.get("config") or {}).items() if _is_set(v)}
    if config:
        head.add_row("Config", ", ".join(f"{k}={_compact(v)}" for k, v in config.items()))
    counts = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    keys = (
        "total",
        "pending",
        "dispatched",
        "running",
        "completed",
        "failed",
        "retrying",
        "skipped",
        "cancelled",
    )
    for key in keys:
        counts.add_column(key, justify="right", style=STATUS_STYLES.get(key, ""))
    counts.add_row(*(str(progress.get(k, 0)) for k in keys))
    return Group(head, counts)


def rollback_text(rollback: Mapping[str, Any]) -> Text:
    """`rolling back: 100/300 jobs restored (33.3%) · 50/s · ETA 4s`, `rolling back · planning:
    reading the backups, nothing restored yet` before its total is known, or how it ended."""
    status = str(rollback.get("status") or "rolling_back")
    done = int(rollback.get("done") or 0)
    text = Text(status.replace("_", " "), style=STATUS_STYLES.get(status, ""))
    if rollback.get("planning"):
        text.append(" · planning: reading the backups, nothing restored yet")
        return text
    if status != "rolling_back" and not done:
        text.append(": nothing restored")
    else:
        counts = f"{done}/{rollback.get('total', 0)} jobs restored"
        text.append(f": {counts} ({format_percent(float(rollback.get('percent') or 0.0))})")
    rate = rollback.get("throughput_per_s")
    if status == "rolling_back":
        text.append(f" · {format_rate(rate)} · ETA {format_duration(rollback.get('eta_s'))}")
    else:
        text.append(f" · ended {format_time(rollback.get('finished_at'))}")
    if rollback.get("reason"):
        text.append(f" · {rollback['reason']}", style="red")
    return text


def _is_set(value: Any) -> bool:
    """Whether a config value says something: not null, not an empty list or mapping."""
    return value is not None and value != [] and value != {}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"retry": {"max_attempts": 3}}` as `{"retry.max_attempts": 3}`."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _at_risk(batch: Batch) -> bool:
    return bool(batch.get("deadline_at_risk")) and batch["status"] not in FINAL_STATUSES


def policy_marks(batch: Batch) -> Text:
    """Short marks of the scheduling policies for a table cell: at risk, waiting."""
    marks = Text()
    if _at_risk(batch):
        marks.append(" at risk", style="bold red")
    if batch.get("waiting_for") and batch["status"] == "queued":
        marks.append(f" waiting for {len(batch.get('waiting_for') or [])}", style="yellow")
    return marks


def _status_with_reason(batch: Batch) -> Text:
    text = status_text(batch["status"])
    if batch.get("reason"):
        text.append(f"  ({batch.get('reason')})", style="dim")
    return text


def _compact(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def jobs_table(jobs: Sequence[Job], next_cursor: str | None = None) -> RenderableType:
    if not jobs:
        return Text("No jobs match.", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Job", no_wrap=True, style="bold")
    table.add_column("Status", no_wrap=True)
    table.add_column("Attempt", justify="right")
    table.add_column("Duration", justify="right")
    table.add_column("Error, warnings or why skipped", max_width=60, overflow="ellipsis")
    for job in jobs:
        error = job.get("error")
        table.add_row(
            job["id"],
            _job_status(job),
            str(job.get("attempt", "")),
            format_duration(job.get("duration_s")),
            _note(job) if not error or job.get("awaiting_decision") else _error_text(error),
        )
    if next_cursor:
        return Group(table, Text(f"More jobs: --cursor {next_cursor}", style="dim"))
    return table


def _note(job: Job) -> Text:
    """What a job that did not fail says: what decision it waits for, why it was skipped,
    or its warnings."""
    error = job.get("error")
    if job.get("awaiting_decision") and error:
        return Text(str(error.get("message") or ""), style="yellow")
    if job.get("skip_reason"):
        return Text(str(job.get("skip_reason")), style="dim")
    warnings = job.get("warnings") or []
    if not warnings:
        return Text("")
    more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
    return Text(f"warning: {warnings[0]}{more}", style="yellow")


def _job_status(job: Job) -> Text:
    """The job's status, what it last said of its progress while it runs, and whether a
    rollback undid what it did (it still completed)."""
    text = status_text("awaiting decision" if job.get("awaiting_decision") else job["status"])
    progress = _progress_text(job)
    if progress:
        text.append(f" {progress}", style="dim")
    if job.get("rolled_back_at"):
        text.append(", rolled back", style=STATUS_STYLES["rolled_back"])
    return text


def _progress_text(job: Job) -> str:
    """`42% step 2 of 5`, from the job's latest progress report; empty if it has none."""
    progress = job.get("progress")
    if not progress:
        return ""
    percent = progress.get("percent")
    parts = [] if percent is None else [f"{percent:.0f}%"]
    if progress.get("message"):
        parts.append(progress["message"])
    return " ".join(parts)


# How a failure's severity is shown (the API's JobError.severity).
SEVERITY_STYLES = {"low": "dim", "medium": "yellow", "high": "red", "critical": "bold red"}


def _error_text(error: Mapping[str, Any]) -> str:
    kind = error.get("class") or "Error"
    notes = ["retryable"] if error.get("retryable") else []
    if error.get("severity"):
        notes.append(str(error["severity"]))
    return f"{kind}: {error.get('message', '')}" + (f" ({', '.join(notes)})" if notes else "")


def job_view(job: Job) -> RenderableType:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Job", job["id"])
    head.add_row("Status", _job_status(job))
    head.add_row("Attempt", str(job.get("attempt", "")))
    head.add_row("Item", _compact(job.get("item")))
    if job.get("output") is not None:
        head.add_row("Output", _compact(job.get("output")))
    error = job.get("error")
    if error and job.get("awaiting_decision"):
        head.add_row("Waiting for", Text(str(error.get("message") or ""), style="yellow"))
    elif error:
        head.add_row("Error", Text(_error_text(error), style="red"))
        trace = error.get("traceback")
        if trace:
            head.add_row("Traceback", Text(trace, style="dim"))
    if job.get("skip_reason"):
        head.add_row("Skipped", str(job.get("skip_reason")))
    used = job.get("resources")
    if used:
        head.add_row(
            "Worker process",
            f"{used.get('cpu_s')} CPU s, peak {used.get('max_rss_mb')} MB resident",
        )
    for n, warning in enumerate(job.get("warnings") or []):
        head.add_row("Warnings" if n == 0 else "", Text(warning, style="yellow"))
    head.add_row("Started", format_time(job.get("started_at")))
    head.add_row("Finished", format_time(job.get("finished_at")))
    head.add_row("Duration", format_duration(job.get("duration_s")))
    if job.get("rolled_back_at"):
        head.add_row("Rolled back", format_time(job.get("rolled_back_at")))
    attempts = job.get("attempts") or []
    if not attempts:
        return head
    table = Table(title="Attempts", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in ("#", "Executor", "Started", "Finished", "Status", "Error"):
        table.add_column(column)
    for attempt in attempts:
        attempt_error = attempt.get("error")
        table.add_row(
            str(attempt.get("attempt", "")),
            attempt.get("executor") or DASH,
            format_time(attempt.get("started_at")),
            format_time(attempt.get("finished_at")),
            status_text(attempt.get("status", "")),
            _error_text(attempt_error) if attempt_error else "",
        )
    return Group(head, table)


def job_types_table(job_types: Sequence[JobType]) -> RenderableType:
    if not job_types:
        return Text("No job types announced yet (is an executor running?).", style="dim")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Job type", style="bold", no_wrap=True)
    table.add_column("Item fields")
    table.add_column("Output fields")
    table.add_column("Runs", no_wrap=True)
    table.add_column("Description")
    for job_type in job_types:
        fields = ", ".join((job_type.get("input_schema") or {}).get("properties", {}))
        outputs = ", ".join((job_type.get("output_schema") or {}).get("properties", {}))
        runs = job_type.get("isolation") or "inline"
        if job_type.get("supports_rollback"):
            runs += ", undoable"
        table.add_row(
            job_type["name"], fields or DASH, outputs or DASH, runs, job_type.get("description", "")
        )
    return table


def keys_table(keys: Sequence[ApiKey]) -> RenderableType:
    if not keys:
        return Text("No API keys.", style="dim")
    columns = ["id", "name", "role", "created_at"]
    columns += sorted({k for key in keys for k in key} - set(columns) - {"key", "hash"})
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column.replace("_", " ").capitalize())
    for key in keys:
        table.add_row(*(_cell(column, key.get(column)) for column in columns))
    return table


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "rate_limit" and isinstance(value, Mapping):
        return f"{value.get('per_s')}/s, burst {value.get('burst')}"
    if column.endswith("_at"):
        return format_time(str(value))
    return _compact(value)


def mapping_view(data: Mapping[str, Any], title: str | None = None) -> RenderableType:
    """Any JSON object for people: scalars as a key/value grid, nested objects indented,
    lists of objects as tables. Used for reports and rollback plans, whose fields grow."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    tables: list[RenderableType] = []
    for key, value in data.items():
        label = key.replace("_", " ")
        if isinstance(value, Mapping) and value:
            grid.add_row(label, mapping_view(value))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            tables.append(records_table(value, title=label))
        elif isinstance(value, float):
            # a duration shows its unit ("1m 5s"): the label drops the key's "_s"
            grid.add_row(label.removesuffix(" s"), _number(key, value))
        else:
            grid.add_row(label, _cell(key, value) if value is not None else DASH)
    parts: list[RenderableType] = [Text(title, style="bold underline")] if title else []
    return Group(*parts, grid, *tables)


def _number(key: str, value: float) -> str:
    if key.endswith("_s"):
        return format_duration(value)
    if key.endswith("rate") and 0 <= value <= 1:
        return format_percent(100 * value)
    return f"{value:g}"


def records_table(records: Sequence[Mapping[str, Any]], title: str | None = None) -> Table:
    columns: list[str] = []
    for record in records:
        columns.extend(k for k in record if k not in columns)
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for record in records:
        table.add_row(*(_cell(c, record.get(c)) for c in columns))
    return table


def error_message(error: BatchyardError) -> str:
    """What a person reads when a command fails: the problem's title, status and detail, the
    first field errors, and a hint where one helps. Never a traceback."""
    if not isinstance(error, ApiError):
        return f"Error: {error.message}"
    problem = error.problem
    lines = [f"Error: {problem.title} (HTTP {problem.status})"]
    if problem.detail:
        lines[0] += f": {problem.detail}"
    for entry in list(problem.errors)[:10]:
        lines.append(f"  - {_field_error(entry)}")
    if len(problem.errors) > 10:
        lines.append(f"  ... and {len(problem.errors) - 10} more")
    if isinstance(error, Unauthorized):
        lines.append(
            "Hint: pass a key with --api-key, BATCHYARD_API_KEY or the config file "
            "(`batchyard config show` tells which one is used)."
        )
    return "\n".join(lines)


def _field_error(entry: Mapping[str, Any]) -> str:
    where: list[str] = []
    if "item" in entry:
        where.append(f"item {entry['item']}")
    if entry.get("path"):
        where.append(str(entry["path"]))
    if entry.get("loc"):
        where.append(".".join(str(p) for p in entry["loc"]))
    message = entry.get("msg") or entry.get("message") or _compact(dict(entry))
    return f"{', '.join(where)}: {message}" if where else str(message)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


PIPE_WIDTH = 200
"""Tables written to a file or a pipe are this wide (unless COLUMNS says otherwise), so
nothing is cut to fit an 80-column guess."""


def _console(*, stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, width=PIPE_WIDTH)


class Output:
    """Where commands write: tables and messages on stdout, errors and notes on stderr, and
    plain JSON (no colour, no wrapping) on stdout for `--json`."""

    def __init__(self, stdout: Console | None = None, stderr: Console | None = None) -> None:
        self.stdout = stdout or _console(stderr=False)
        self.stderr = stderr or _console(stderr=True)

    def json(self, data: Any) -> None:
        stream = self.stdout.file if self.stdout.file is not None else sys.stdout
        stream.write(to_json(data) + "\n")
        stream.flush()

    def json_line(self, data: Any) -> None:
        stream = self.stdout.file if self.stdout.file is not None else sys.stdout
        stream.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        stream.flush()

    def show(self, *renderables: RenderableType) -> None:
        self.stdout.print(*renderables)

    def say(self, message: str, style: str | None = None) -> None:
        self.stdout.print(Text(message, style=style or ""), soft_wrap=True)

    def note(self, message: str) -> None:
        self.stderr.print(Text(message, style="dim"), soft_wrap=True)

    def error(self, error: BatchyardError) -> None:
        self.stderr.print(Text(error_message(error), style="red"), soft_wrap=True)

    def lines(self, items: Iterable[str]) -> None:
        for line in items:
            self.stdout.print(line, markup=False, highlight=False)


def _resting(progress: Mapping[str, Any]) -> str:
    """How much of the elapsed time the batch could move, when pauses (or the rest before a
    retry) took a second or more of it: its rate and ETA count only that time."""
    elapsed, active = progress.get("elapsed_s"), progress.get("active_s")
    if elapsed is None or active is None or elapsed - active < 1:
        return ""
    return f" ({format_duration(active)} of it running)"
