"""Job types the executors serve, with their input schemas."""

from __future__ import annotations

from typing import Annotated

import typer

from batchyard_cli.app_state import JsonFlag, state
from batchyard_cli.errors import InputError
from batchyard_cli.render import job_types_table


def job_types(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Show this job type's input schema as JSON.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The job types executors announce and the fields their items take."""
    app = state(ctx)
    found = app.client().job_types()
    if name is not None:
        match = [t for t in found if t["name"] == name]
        if not match:
            known = ", ".join(t["name"] for t in found) or "none"
            raise InputError(f"no job type {name!r} (known: {known})")
        app.output.json(match[0] if as_json else match[0]["input_schema"])
    elif as_json:
        app.output.json(found)
    else:
        app.output.show(job_types_table(found))


def register(app: typer.Typer) -> None:
    app.command("job-types", rich_help_panel="Batches")(job_types)
