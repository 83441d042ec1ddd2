"""The monitor's three faces: live rich progress bars on a terminal, one plain line per status
change when the output is a file or a pipe, and JSON lines for `--json`."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import Progress, ProgressColumn, Task, TaskID
from rich.progress_bar import ProgressBar
from rich.table import Column
from rich.text import Text

from batchyard_cli.monitor import MAX_FAILURES_SHOWN, Board, Change, Tracked
from batchyard_cli.render import (
    STATUS_STYLES,
    Output,
    counts_summary,
    failures_of,
    finished_count,
    format_duration,
    format_percent,
    format_rate,
)

ERROR_STATUSES = frozenset({"failed", "cancelled", "rollback_failed"})
# How a failed attempt scrolls above the bars: an error; one its job type calls retryable (the
# batch tries it again while it has attempts left); a job parked for a person's decision
FAILURE_MARKS = {"failed": ("✗", "red"), "retryable": ("✗", "yellow"), "awaiting": ("⏸", "yellow")}


def _planning(tracked: Tracked) -> bool:
    """Whether the batch is rolling back and its rollback not planned yet."""
    rollback = tracked.rolling_back
    return tracked.status == "rolling_back" and bool(rollback and rollback.get("planning"))


def _fields(tracked: Tracked) -> dict[str, Any]:
    """A batch's bar: its jobs, or while it rolls back (and once it ended by a rollback) the
    jobs its rollback restored."""
    rollback = tracked.rolling_back
    if rollback is not None:
        finished_at = rollback.get("finished_at")
        return {
            "label": tracked.name,
            "batch_id": tracked.batch_id,
            "status": tracked.status,
            "jobs_done": int(rollback.get("done") or 0),
            "jobs_total": int(rollback.get("total") or 0),
            "failed": 0,
            "awaiting": 0,
            "retrying": 0,
            "rate": rollback.get("throughput_per_s"),
            "eta": rollback.get("eta_s"),
            "elapsed": _seconds_between(rollback.get("started_at"), finished_at),
            "finished": tracked.finished,
            "restored": True,
            "planning": _planning(tracked),
        }
    progress = tracked.progress
    # jobs parked for a person's decision are of `failed`, but no error: shown apart
    failed, awaiting = failures_of(progress)
    return {
        "label": tracked.name,
        "batch_id": tracked.batch_id,
        "status": tracked.status,
        "jobs_done": finished_count(progress),
        "jobs_total": int(progress.get("total") or 0),
        "failed": failed,
        "awaiting": awaiting,
        "retrying": int(progress.get("retrying") or 0),
        # the recent pace the ETA goes at, while there is one; else the whole run's mean
        "rate": _first_known(progress.get("pace_per_s"), progress.get("throughput_per_s")),
        "eta": progress.get("eta_s"),
        "elapsed": progress.get("elapsed_s"),
        "finished": tracked.finished,
        "restored": False,
        "planning": False,
    }


def _first_known(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _seconds_between(start: object, end: object) -> float | None:
    """Seconds from one ISO time to another (or to now); None if either is unreadable."""
    try:
        began = datetime.fromisoformat(str(start))
        ended = datetime.fromisoformat(str(end)) if end else datetime.now(began.tzinfo)
    except ValueError:
        return None
    return max((ended - began).total_seconds(), 0.0)


class _FieldColumn(ProgressColumn):
    """A column computed from a task's fields (set from the server's numbers, not rich's own
    sampling: the server knows the batch's real throughput and ETA)."""

    def __init__(self, render: Callable[[Task], RenderableType], **column: object) -> None:
        super().__init__(table_column=Column(**column))  # type: ignore[arg-type]
        self._render = render

    def render(self, task: Task) -> RenderableType:
        return self._render(task)


def _name(task: Task) -> Text:
    text = Text(str(task.fields["label"])[:24], style="bold")
    text.append(f" {task.fields['batch_id']}", style="dim")
    return text


def _bar(task: Task) -> ProgressBar:
    status = str(task.fields["status"])
    # yellow while any job failed or waits for a person's decision: not all of it went well
    errors = int(task.fields["failed"]) > 0 or int(task.fields["awaiting"]) > 0
    style = "red" if status in ERROR_STATUSES else "yellow" if errors else "blue"
    finished_style = "red" if status in ERROR_STATUSES else "yellow" if errors else "green"
    return ProgressBar(
        total=max(int(task.fields["jobs_total"]), 1),
        completed=int(task.fields["jobs_done"]),
        width=30,
        complete_style=style,
        finished_style=finished_style,
        pulse=status == "queued" and int(task.fields["jobs_done"]) == 0,
        animation_time=time.monotonic(),
    )


def _percent(task: Task) -> Text:
    total = int(task.fields["jobs_total"])
    share = 100.0 * int(task.fields["jobs_done"]) / total if total else 0.0
    return Text(format_percent(share).rjust(6))


def _counts(task: Task) -> Text:
    if task.fields.get("planning"):
        return Text("planning rollback")
    counts = f"{task.fields['jobs_done']}/{task.fields['jobs_total']}"
    return Text(f"{counts} restored" if task.fields["restored"] else counts)


def _errors(task: Task) -> Text:
    failed, retrying = int(task.fields["failed"]), int(task.fields["retrying"])
    awaiting = int(task.fields["awaiting"])
    if not failed and not retrying and not awaiting:
        return Text("0 errors", style="dim")
    parts = [
        Text(f"{failed} failed", style="red") if failed else None,
        Text(f"{retrying} retrying", style="yellow") if retrying else None,
        Text(f"{awaiting} awaiting", style="yellow") if awaiting else None,
    ]
    return Text(" ").join(p for p in parts if p is not None)


def _rate(task: Task) -> Text:
    rate = task.fields["rate"]
    return Text(format_rate(rate if isinstance(rate, int | float) else None))


def _eta(task: Task) -> Text:
    if task.fields["finished"]:
        elapsed = task.fields["elapsed"]
        took = format_duration(elapsed if isinstance(elapsed, int | float) else None)
        return Text(f"took {took}")
    eta = task.fields["eta"]
    return Text(f"ETA {format_duration(eta if isinstance(eta, int | float) else None)}")


def _status(task: Task) -> Text:
    status = str(task.fields["status"])
    return Text(status, style=STATUS_STYLES.get(status, ""))


class LiveView:
    """Rich progress bars, one per batch, redrawn in place; failures scroll above them."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            _FieldColumn(_name, no_wrap=True),
            _FieldColumn(_bar),
            _FieldColumn(_percent, justify="right"),
            _FieldColumn(_counts, justify="right"),
            _FieldColumn(_errors),
            _FieldColumn(_rate, justify="right"),
            _FieldColumn(_eta),
            _FieldColumn(_status),
            console=console,
            refresh_per_second=4,
        )
        self.tasks: dict[str, TaskID] = {}

    def start(self, board: Board) -> None:
        for tracked in board.tracked.values():
            self.tasks[tracked.batch_id] = self.progress.add_task(
                tracked.name, total=None, **_fields(tracked)
            )
        self.progress.start()

    def update(self, board: Board, change: Change) -> None:
        tracked = board.tracked[change.batch_id]
        if change.kind == "job_failed" and change.message:
            if tracked.failures_seen <= MAX_FAILURES_SHOWN:
                mark, style = FAILURE_MARKS[change.failure or "failed"]
                self.progress.console.print(Text(f"{mark} {change.message}", style=style))
            elif tracked.failures_seen == MAX_FAILURES_SHOWN + 1:
                self.progress.console.print(
                    Text(
                        f"… more failures in {tracked.batch_id}: "
                        f"batchyard jobs list {tracked.batch_id} --status failed",
                        style="dim",
                    )
                )
        self.progress.update(self.tasks[change.batch_id], **_fields(tracked))

    def note(self, message: str) -> None:
        self.progress.console.print(Text(message, style="dim"))

    def stop(self, board: Board) -> None:
        for tracked in board.tracked.values():
            self.progress.update(self.tasks[tracked.batch_id], **_fields(tracked))
        self.progress.refresh()
        self.progress.stop()
        self.console.print(summary(board))


class LineView:
    """One line per status change and per failure: for logs, pipes and CI."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.last: dict[str, str] = {}

    def start(self, board: Board) -> None:
        for tracked in board.tracked.values():
            self._line(tracked)

    def update(self, board: Board, change: Change) -> None:
        tracked = board.tracked[change.batch_id]
        if change.kind == "job_failed" and tracked.failures_seen <= MAX_FAILURES_SHOWN:
            said = "job" if change.failure == "awaiting" else "job failed:"
            self.output.lines([f"{_now()} {tracked.batch_id} {said} {change.message}"])
        elif change.status_changed:
            self._line(tracked)

    def note(self, message: str) -> None:
        self.output.note(message)

    def stop(self, board: Board) -> None:
        for tracked in board.tracked.values():
            if self.last.get(tracked.batch_id) != _plain(tracked):
                self._line(tracked)
        self.output.show(summary(board))

    def _line(self, tracked: Tracked) -> None:
        self.last[tracked.batch_id] = _plain(tracked)
        self.output.lines([f"{_now()} {_plain(tracked)}"])


class JsonLinesView:
    """One JSON object per change (`{"event", "batch_id", "status", "progress"}`), then a
    `summary` object with every batch's final status."""

    def __init__(self, output: Output) -> None:
        self.output = output

    def start(self, board: Board) -> None:
        for tracked in board.tracked.values():
            self._emit("snapshot", tracked)

    def update(self, board: Board, change: Change) -> None:
        self._emit(change.kind, board.tracked[change.batch_id], change.message)

    def note(self, message: str) -> None:
        self.output.note(message)

    def stop(self, board: Board) -> None:
        self.output.json_line(
            {
                "event": "summary",
                "batches": {t.batch_id: t.status for t in board.tracked.values()},
                "exit_code": int(board.exit_code()),
            }
        )

    def _emit(self, kind: str, tracked: Tracked, message: str | None = None) -> None:
        record: dict[str, object] = {
            "event": kind,
            "batch_id": tracked.batch_id,
            "status": tracked.status,
            "progress": tracked.progress,
        }
        if tracked.rollback is not None:
            record["rollback"] = tracked.rollback
        if message:
            record["message"] = message
        self.output.json_line(record)


def _plain(tracked: Tracked) -> str:
    rollback = tracked.rolling_back
    if _planning(tracked):
        return f"{tracked.batch_id} {tracked.name!r} {tracked.status} planning the rollback"
    if rollback is not None and tracked.status != rollback.get("status", tracked.status):
        # the batch's end came before its rollback's (read next): no counts of the moment
        return f"{tracked.batch_id} {tracked.name!r} {tracked.status}"
    if rollback is not None:
        return (
            f"{tracked.batch_id} {tracked.name!r} {tracked.status} "
            f"{format_percent(float(rollback.get('percent') or 0.0))} "
            f"{rollback.get('done', 0)}/{rollback.get('total', 0)} jobs restored"
        )
    percent = tracked.progress.get("percent", 0.0)
    return (
        f"{tracked.batch_id} {tracked.name!r} {tracked.status} {format_percent(percent)} "
        f"{counts_summary(tracked.progress)}"
    )


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


def summary(board: Board) -> Text:
    """`2 batches finished: 1 completed, 1 completed_with_errors` (or the one batch's)."""
    statuses: dict[str, int] = {}
    for tracked in board.tracked.values():
        statuses[tracked.status] = statuses.get(tracked.status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in statuses.items())
    count = len(board.tracked)
    ok = board.exit_code() == 0
    noun = f"{count} batch{'es' if count != 1 else ''}"
    head = f"{noun} finished: " if board.all_finished() else f"stopped watching {noun}: "
    text = Text(head + parts, style="bold green" if ok else "bold yellow")
    for tracked in board.tracked.values():
        awaiting = int(tracked.progress.get("awaiting_decision") or 0)
        if awaiting:  # parked for a person: say where to decide
            text.append(
                f"\n{awaiting} job(s) of {tracked.batch_id} await a decision: "
                f"batchyard show {tracked.batch_id}",
                style="yellow",
            )
    return text
