"""A batch's report (table, JSON or CSV) and its export (a ZIP)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from batchyard_cli.app_state import BatchIdArg, JsonFlag, state
from batchyard_cli.errors import InputError
from batchyard_cli.render import mapping_view, to_json

PANEL = "Reports"


class ReportFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def report(
    ctx: typer.Context,
    batch_id: BatchIdArg,
    format_: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="table (default on a terminal), json or csv."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Totals, success rate, durations (mean, p50, p95), metrics, failed jobs and the
    completed jobs' warnings."""
    app = state(ctx)
    chosen = _format(format_, output, as_json)
    client = app.client()
    if chosen is ReportFormat.csv:
        text = client.report_csv(batch_id)
    else:
        data = client.report(batch_id)
        if chosen is ReportFormat.table and output is None:
            app.output.show(mapping_view(data, title=f"Report of {batch_id}"))
            return
        if chosen is ReportFormat.table:
            raise InputError("--output writes json or csv: add --format json or --format csv")
        text = to_json(data) + "\n"
    if output is None:
        app.output.stdout.file.write(text)
        return
    output.write_text(text, encoding="utf-8")
    app.output.note(f"wrote {output} ({len(text.encode())} bytes)")


def _format(chosen: ReportFormat | None, output: Path | None, as_json: bool) -> ReportFormat:
    """--json, else --format, else the output file's suffix, else a table."""
    if as_json:
        return ReportFormat.json
    if chosen is not None:
        return chosen
    if output is not None and output.suffix in (".json", ".csv"):
        return ReportFormat(output.suffix[1:])
    return ReportFormat.table


def export(
    ctx: typer.Context,
    batch_id: BatchIdArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The ZIP file (default: `<batch id>.zip`)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Download everything about a batch as a ZIP: batch.json, jobs.csv, report.json,
    events.jsonl."""
    app = state(ctx)
    target = output or Path(f"{batch_id}.zip")
    if target.exists() and not force:
        raise InputError(f"{target} exists: choose another --output or add --force")
    partial = target.with_name(target.name + ".part")
    bar = Progress(
        TextColumn("exporting"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=app.output.stderr,
        disable=not app.output.stderr.is_terminal,
    )
    try:
        with bar, partial.open("wb") as sink:
            task = bar.add_task("export", total=None)
            size = app.client().export(
                batch_id, sink, lambda done, total: bar.update(task, completed=done, total=total)
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    app.output.say(f"Wrote {target} ({size} bytes).")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(report)
    app.command(rich_help_panel=PANEL)(export)
