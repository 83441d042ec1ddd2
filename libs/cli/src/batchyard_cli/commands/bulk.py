"""`batchyard bulk ACTION`: cancel, retry, archive, delete, pause or resume many batches at
once, chosen by id or by filters, with a result per batch."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from batchyard_cli.app_state import JsonFlag, state
from batchyard_cli.bulk import ACTIONS, MAX_BULK, Selection, bulk_body, exit_code
from batchyard_cli.client import BatchFilter
from batchyard_cli.errors import InputError
from batchyard_cli.insights_view import bulk_view
from batchyard_cli.moments import parse_moment
from batchyard_cli.render import batches_table

CONFIRM_ALWAYS = {"delete", "cancel"}
"""Actions asked about even for batches named by id: their effect cannot be undone."""

IdOpt = Annotated[list[str] | None, typer.Option("--id", help="A batch id (repeat for several).")]
StatusOpt = Annotated[
    list[str] | None,
    typer.Option("--status", "-s", help="Batches in this status (repeatable, or a,b)."),
]
TagOpt = Annotated[str | None, typer.Option("--tag", help="Batches with this tag.")]
JobTypeOpt = Annotated[
    str | None, typer.Option("--job-type", "-t", help="Batches of this job type.")
]
QOpt = Annotated[str | None, typer.Option("--q", "-q", help="Text in the batch's name.")]
PriorityOpt = Annotated[str | None, typer.Option("--priority", help="Batches of this priority.")]
OwnerOpt = Annotated[str | None, typer.Option("--owner", help="Batches of this owner.")]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Created from (ISO time, or 24h, 7d back).")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Created before (ISO time or span).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _command(action: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        batch_id: IdOpt = None,
        status: StatusOpt = None,
        tag: TagOpt = None,
        job_type: JobTypeOpt = None,
        q: QOpt = None,
        priority: PriorityOpt = None,
        owner: OwnerOpt = None,
        since: SinceOpt = None,
        until: UntilOpt = None,
        yes: YesOpt = False,
        as_json: JsonFlag = False,
    ) -> None:
        app = state(ctx)
        selection = Selection(
            ids=batch_id or (),
            statuses=status or (),
            tag=tag,
            job_type=job_type,
            q=q,
            priority=priority,
            owner=owner,
            created_after=parse_moment(since, option="--since") if since else None,
            created_before=parse_moment(until, option="--until") if until else None,
        )
        body = bulk_body(action, selection)
        client = app.client()
        if not yes and ("filter" in body or action in CONFIRM_ALWAYS):
            if not sys.stdin.isatty():
                raise InputError(
                    f"bulk {action} asks for confirmation: add --yes to run it unattended"
                )
            if "filter" in body:
                found, more = client.iter_batches(
                    BatchFilter(**selection.listing_params()), limit=MAX_BULK + 1
                )
                if not found:
                    app.output.say("No batch matches these filters; nothing to do.")
                    return
                app.output.show(batches_table(found[:20], None))
                count = (
                    f"more than {MAX_BULK}" if len(found) > MAX_BULK or more else str(len(found))
                )
                if len(found) > 20:
                    app.output.note(f"… and {len(found) - 20} more")
            else:
                count = str(len(body["ids"]))
            if not typer.confirm(f"{action.capitalize()} {count} batch(es)?", default=False):
                app.output.say("Nothing done.")
                raise typer.Exit(1)
        outcome = client.bulk(body)
        if as_json:
            app.output.json(outcome)
        else:
            app.output.show(bulk_view(outcome))
        raise typer.Exit(int(exit_code(outcome.get("results") or [])))

    command.__name__ = action
    command.__doc__ = (
        f"{action.capitalize()} many batches (by --id, or by filters; at most {MAX_BULK}). "
        "Prints a result per batch; exits non-zero if any was refused."
    )
    return command


bulk_app = typer.Typer(
    help="One action on many batches: by id or by filters, with a result per batch.",
    no_args_is_help=True,
)
for _action in ACTIONS:
    bulk_app.command(_action)(_command(_action))


def register(app: typer.Typer) -> None:
    app.add_typer(bulk_app, name="bulk", rich_help_panel="Batch actions")
