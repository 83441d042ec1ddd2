"""Retention (admin): show and set the tenant's policy, run it now (or dry)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchyard_cli.app_state import JsonFlag, state
from batchyard_cli.errors import InputError
from batchyard_cli.render import mapping_view

retention_app = typer.Typer(
    help="Retention (admin): archive and delete old finished batches.", no_args_is_help=True
)
POLICY_FIELDS = (
    "enabled",
    "archive_after_days",
    "failed_archive_after_days",
    "delete_archived_after_days",
)


def days(flag: str, value: str | None, current: Any) -> Any:
    """The value of a `DAYS|off` option: unchanged if not given."""
    if value is None:
        return current
    if value.strip().lower() == "off":
        return None
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{flag}: {value!r} is neither a number of days nor `off`") from None
    if not 0 <= number <= 36_500:
        raise InputError(f"{flag}: {value} is not between 0 and 36500 days")
    return number


@retention_app.command("show")
def show_policy(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The tenant's retention policy."""
    app = state(ctx)
    policy = app.client().retention_policy()
    if as_json:
        app.output.json(policy)
    else:
        app.output.show(mapping_view(policy, title="Retention policy"))


@retention_app.command("set")
def set_policy(
    ctx: typer.Context,
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Run it every period on the scheduler."),
    ] = None,
    archive_after: Annotated[
        str | None,
        typer.Option(metavar="DAYS|off", help="Archive terminal batches finished this long ago."),
    ] = None,
    failed_archive_after: Annotated[
        str | None,
        typer.Option(
            metavar="DAYS|off", help="For failed batches instead (e.g. keep them longer)."
        ),
    ] = None,
    delete_after: Annotated[
        str | None,
        typer.Option(metavar="DAYS|off", help="Delete batches archived this long ago."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change the policy: options not given keep their current values."""
    app = state(ctx)
    client = app.client()
    current = client.retention_policy()
    body = {k: current.get(k) for k in POLICY_FIELDS}
    if enabled is not None:
        body["enabled"] = enabled
    body["archive_after_days"] = days("--archive-after", archive_after, body["archive_after_days"])
    body["failed_archive_after_days"] = days(
        "--failed-archive-after", failed_archive_after, body["failed_archive_after_days"]
    )
    body["delete_archived_after_days"] = days(
        "--delete-after", delete_after, body["delete_archived_after_days"]
    )
    policy = client.set_retention_policy(body)
    if as_json:
        app.output.json(policy)
    else:
        app.output.show(mapping_view(policy, title="Retention policy"))


@retention_app.command("run")
def run_now(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would go; change nothing.")
    ] = False,
    wait: Annotated[int, typer.Option(min=0, max=25, help="Seconds to wait for the outcome.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Run the policy now (also when it is not enabled)."""
    app = state(ctx)
    outcome = app.client().run_retention(dry_run=dry_run, wait_s=wait)
    if as_json:
        app.output.json(outcome)
        return
    if outcome.get("status") != "completed":
        app.output.say(f"Run {outcome['run_id']} requested; the scheduler has not reported yet.")
        return
    verb = "would archive" if dry_run else "archived"
    gone = "would delete" if dry_run else "deleted"
    app.output.say(
        f"Run {outcome['run_id']}: {verb} {outcome['archived']}, {gone} {outcome['deleted']}, "
        f"left {outcome['skipped_non_terminal']} unfinished batches alone."
    )
    listed = [f"archive {i}" for i in outcome.get("archived_ids", [])]
    listed += [f"delete {i}" for i in outcome.get("deleted_ids", [])]
    if listed:
        app.output.lines(listed)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention", rich_help_panel="Administration")
