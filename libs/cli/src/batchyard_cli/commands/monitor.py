"""`batchyard monitor`: live progress of one, several or all active batches until they finish."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer

from batchyard_cli.app_state import AppState, state
from batchyard_cli.exit_codes import SUCCESSFUL_FINAL_STATUSES, ExitCode
from batchyard_cli.monitor import Board, View, Watcher, active_batches
from batchyard_cli.monitor_view import JsonLinesView, LineView, LiveView

PANEL = "Watching"


def run_monitor(
    app: AppState,
    batch_ids: list[str],
    *,
    as_json: bool = False,
    interval: float = 1.0,
    use_stream: bool = True,
    restarting: Iterable[str] = (),
    succeeded: frozenset[str] = SUCCESSFUL_FINAL_STATUSES,
) -> ExitCode:
    """Watches the batches (all active ones when none are named) until every one finished;
    returns 0 when all ended in a `succeeded` status (completed), 1 when any ended otherwise,
    130 when interrupted. Batches in `restarting` were just restarted (retry, rollback):
    their current final status does not count."""
    client = app.client()
    batches = [client.get_batch(b) for b in batch_ids] if batch_ids else active_batches(client)
    if not batches:
        if as_json:
            app.output.json_line({"event": "summary", "batches": {}, "exit_code": 0})
        else:
            app.output.say("No active batches.", style="dim")
        return ExitCode.OK
    board = Board.of(batches, restarting, succeeded)
    view: View
    if as_json:
        view = JsonLinesView(app.output)
    elif app.output.stdout.is_terminal:
        view = LiveView(app.output.stdout)
    else:
        view = LineView(app.output)
    watcher = Watcher(client, board, view, interval=interval, use_stream=use_stream)
    view.start(board)
    try:
        code = watcher.run()
    except KeyboardInterrupt:
        view.stop(board)
        return ExitCode.INTERRUPTED
    except BaseException:
        view.stop(board)
        raise
    view.stop(board)
    return code


def monitor(
    ctx: typer.Context,
    batch_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Batches to watch; all active batches when none are given."),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between polls when polling.")
    ] = 1.0,
    no_stream: Annotated[
        bool,
        typer.Option("--no-stream", help="Poll GET instead of following the event stream."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per change, then a summary.")
    ] = False,
) -> None:
    """Live progress bars (percent, counts, throughput, ETA, errors) until the batches finish.

    Follows the server's event stream when it has one, else polls. On a terminal the bars
    redraw in place; piped, it prints a line per status change. Exit code 0 when every
    batch completed, 1 when any ended completed_with_errors, failed, cancelled or rolled
    back, 130 on Ctrl-C."""
    app = state(ctx)
    code = run_monitor(
        app, batch_ids or [], as_json=as_json, interval=interval, use_stream=not no_stream
    )
    raise typer.Exit(int(code))


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=PANEL)(monitor)
