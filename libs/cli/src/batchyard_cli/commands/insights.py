"""How batches ran: one batch's analytics, the tenant's stats, and the audit log (admin)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchyard_cli.app_state import BatchIdArg, JsonFlag, state
from batchyard_cli.insights_view import analytics_view, audit_table, stats_view
from batchyard_cli.moments import parse_moment

PANEL = "Reports"


def analytics(ctx: typer.Context, batch_id: BatchIdArg, as_json: JsonFlag = False) -> None:
    """Durations (p50…p99), throughput over time as a sparkline, errors by class, retries."""
    app = state(ctx)
    data = app.client().analytics(batch_id)
    if as_json:
        app.output.json(data)
    else:
        app.output.show(analytics_view(data))


def stats(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="From (ISO time, or 24h, 7d back) [default 24h].")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Until (ISO time or span) [now].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Batches created in a window and their jobs: by status, success rate, jobs/s, per job type."""
    app = state(ctx)
    data = app.client().stats(
        parse_moment(since, option="--since") if since else None,
        parse_moment(until, option="--until") if until else None,
    )
    if as_json:
        app.output.json(data)
    else:
        app.output.show(stats_view(data))


def audit(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's calls.")] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="Only calls on this id (batch, key...).")
    ] = None,
    method: Annotated[
        str | None, typer.Option("--method", help="POST, PUT, PATCH or DELETE.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From (ISO time or 24h, 7d).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until (ISO time or span).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after an earlier page.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Who changed what, when, and whether it was allowed (admin), newest first."""
    app = state(ctx)
    client = app.client()
    found: list[dict[str, Any]] = []
    query = {
        "user": user,
        "resource": resource,
        "method": method.upper() if method else None,
        "since": parse_moment(since, option="--since") if since else None,
        "until": parse_moment(until, option="--until") if until else None,
    }
    while len(found) < limit:
        page = client.audit(**query, limit=min(500, limit - len(found)), cursor=cursor)
        found.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor or not page["items"]:
            break
    if as_json:
        app.output.json({"items": found, "next_cursor": cursor})
    else:
        app.output.show(audit_table(found, cursor))


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(analytics)
    app.command(rich_help_panel=PANEL)(stats)
    app.command(rich_help_panel="Administration")(audit)
