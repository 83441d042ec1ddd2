"""Jobs of a batch: list, show, retry, cancel. A job id is `<batch id>.<index>`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchyard_cli.app_state import BatchIdArg, JsonFlag, state
from batchyard_cli.client import MAX_PAGE
from batchyard_cli.errors import BatchyardError
from batchyard_cli.exit_codes import ExitCode, for_error, worst
from batchyard_cli.render import job_view, jobs_table, records_table
from batchyard_cli.resources import Job

JobIdArg = Annotated[str, typer.Argument(help="The job id (`<batch id>.<index>`).")]
JobIdsArg = Annotated[list[str], typer.Argument(help="One or more job ids.")]

jobs_app = typer.Typer(help="A batch's jobs: list, show, retry, cancel.", no_args_is_help=True)


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    batch_id: BatchIdArg,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            "-s",
            help="Only this status (several: comma-separated); `awaiting_decision`: the failed "
            "jobs waiting for a person's decision.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000, help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after an earlier page.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A batch's jobs in index order, with status, attempts, duration and error."""
    app = state(ctx)
    client = app.client()
    found: list[Job] = []
    while len(found) < limit:
        page = client.list_jobs(batch_id, status, min(MAX_PAGE, limit - len(found)), cursor)
        found.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor or not page["items"]:
            break
    if as_json:
        app.output.json({"items": found, "next_cursor": cursor})
    else:
        app.output.show(jobs_table(found, cursor))


@jobs_app.command("show")
def show_job(ctx: typer.Context, job_id: JobIdArg, as_json: JsonFlag = False) -> None:
    """One job: item, output, error and every attempt."""
    app = state(ctx)
    job = app.client().get_job(job_id)
    if as_json:
        app.output.json(job)
    else:
        app.output.show(job_view(job))


def _each(ctx: typer.Context, job_ids: list[str], verb: str, as_json: bool) -> None:
    app = state(ctx)
    client = app.client()
    call = client.retry_job if verb == "retry" else client.cancel_job
    codes: list[ExitCode] = []
    answers: list[dict[str, Any]] = []
    for job_id in job_ids:
        try:
            answers.append(call(job_id))
        except BatchyardError as exc:
            app.output.error(exc)
            codes.append(for_error(exc))
            continue
        if not as_json:
            app.output.say(f"{job_id}: {verb} accepted")
    if as_json:
        app.output.json(answers)
    raise typer.Exit(int(worst(codes)))


@jobs_app.command("retry")
def retry_jobs(ctx: typer.Context, job_ids: JobIdsArg, as_json: JsonFlag = False) -> None:
    """Run failed jobs again."""
    _each(ctx, job_ids, "retry", as_json)


@jobs_app.command("cancel")
def cancel_jobs(ctx: typer.Context, job_ids: JobIdsArg, as_json: JsonFlag = False) -> None:
    """Cancel pending or running jobs."""
    _each(ctx, job_ids, "cancel", as_json)


def webhooks(ctx: typer.Context, batch_id: BatchIdArg, as_json: JsonFlag = False) -> None:
    """The notices sent to the batch's webhooks: event, target, status, attempts, last answer."""
    app = state(ctx)
    deliveries = app.client().webhook_deliveries(batch_id)
    if as_json:
        app.output.json(deliveries)
        return
    if not deliveries:
        app.output.say(f"No webhook notice for {batch_id} yet.")
        return
    rows = [
        {
            "notice": d["event"].removeprefix("batch."),
            "to": d["url"],
            "status": d["status"],
            "attempts": d["attempts"],
            "last answer": d.get("last_error")
            or (f"HTTP {d['last_status_code']}" if d.get("last_status_code") else "-"),
        }
        for d in deliveries
    ]
    app.output.show(records_table(rows))


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs", rich_help_panel="Jobs")
    app.command(rich_help_panel="Jobs")(webhooks)
