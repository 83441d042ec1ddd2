"""Batch actions: start, pause, resume, cancel, retry, rollback, duplicate, archive.

Actions that take several batch ids act on each in turn; one failing does not stop the
others, and the exit code is the worst of their outcomes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import typer

from batchyard_cli.app_state import AppState, BatchIdArg, JsonFlag, state
from batchyard_cli.commands.monitor import run_monitor
from batchyard_cli.errors import BatchyardError
from batchyard_cli.exit_codes import FINAL_STATUSES, ExitCode, for_error, worst
from batchyard_cli.render import mapping_view, records_table
from batchyard_cli.resources import ActionAccepted, BatchAction

PANEL = "Batch actions"

BatchIdsArg = Annotated[list[str], typer.Argument(help="One or more batch ids.")]
WatchOpt = Annotated[
    bool, typer.Option("--watch", "-w", help="Then monitor the batches until they finish.")
]


def act_on_each(
    app: AppState,
    batch_ids: list[str],
    call: Callable[[str], ActionAccepted],
    as_json: bool,
) -> tuple[ExitCode, list[ActionAccepted]]:
    """Runs `call` per batch; prints each acceptance (or error); returns the worst code and
    the acceptances."""
    codes: list[ExitCode] = []
    answers: list[ActionAccepted] = []
    for batch_id in batch_ids:
        try:
            accepted = call(batch_id)
        except BatchyardError as exc:
            app.output.error(exc)
            codes.append(for_error(exc))
            continue
        answers.append(accepted)
        if not as_json:
            app.output.say(
                f"{accepted['batch_id']}: {accepted['action']} accepted "
                f"(status when accepted: {accepted['status']})"
            )
    if as_json:
        app.output.json(answers[0] if len(batch_ids) == 1 and answers else answers)
    return worst(codes), answers


def _action(action: BatchAction, doc: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        batch_ids: BatchIdsArg,
        watch: WatchOpt = False,
        as_json: JsonFlag = False,
    ) -> None:
        app = state(ctx)
        client = app.client()
        code, answers = act_on_each(
            app, batch_ids, lambda b: client.batch_action(b, action), as_json
        )
        if code == ExitCode.OK and watch:
            restarting = [a["batch_id"] for a in answers if a["status"] in FINAL_STATUSES]
            code = run_monitor(app, batch_ids, as_json=as_json, restarting=restarting)
        raise typer.Exit(int(code))

    command.__doc__ = doc
    command.__name__ = action
    return command


CHECK_POLL_S = 0.5


def _dry_run(
    app: AppState, batch_id: str, accepted: ActionAccepted, wait_s: float, as_json: bool
) -> None:
    """Prints the API's plan, then waits for the rollback service's check of it (the same
    checks a rollback makes before it changes anything) and says how it ended; exits 1
    unless the rollback would go ahead."""
    plan = accepted.get("plan")
    plan = plan if isinstance(plan, dict) else {}
    check_id = plan.get("check_id")
    if not as_json:
        app.output.say(f"{batch_id}: rollback plan (dry run, nothing changed)", style="bold")
        app.output.show(mapping_view({k: v for k, v in plan.items() if k != "check_id"}))
    if not isinstance(check_id, str) or wait_s <= 0:
        if as_json:
            app.output.json(accepted)
        return
    client = app.client()
    deadline = time.monotonic() + wait_s
    check = client.rollback_check(batch_id, check_id)
    while check["status"] == "checking" and time.monotonic() < deadline:
        time.sleep(CHECK_POLL_S)
        check = client.rollback_check(batch_id, check_id)
    if as_json:
        app.output.json({**accepted, "check": check})
    elif check["status"] == "clear":
        app.output.say(
            f"checked: the rollback would restore {check.get('jobs')} job(s)", style="green"
        )
    elif check["status"] == "refused":
        refused = check.get("refused") or []
        if refused:
            app.output.say("checked: the rollback would be refused, nothing restored", style="red")
            app.output.show(records_table(refused, title="refused jobs"))
        else:
            reason = check.get("reason")
            app.output.say(f"checked: the rollback would be refused: {reason}", style="red")
        if int(check.get("refused_total") or 0) > len(refused):
            app.output.say(f"… {check['refused_total']} job(s) refuse it in all")
    else:
        app.output.say(
            f"the rollback service has not checked the plan within {wait_s:g} s; ask again: "
            f"batchyard rollback {batch_id} --dry-run",
            style="yellow",
        )
    if check["status"] != "clear":
        raise typer.Exit(int(ExitCode.UNSUCCESSFUL))


def rollback(
    ctx: typer.Context,
    batch_id: BatchIdArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be restored; change nothing.")
    ] = False,
    job: Annotated[
        list[str] | None,
        typer.Option("--job", help="Roll back only this job (repeat for several)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overwrite what changed after a job (by hand or by a later batch); without "
            "it such a job refuses the rollback and nothing is restored.",
        ),
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Then monitor the rollback until it ends: exit 0 when rolled back, 1 when not.",
        ),
    ] = False,
    check_wait: Annotated[
        float,
        typer.Option(
            "--check-wait",
            min=0,
            help="With --dry-run: seconds to wait for the rollback service's check of the "
            "plan (0: do not wait). Exit 0 when the rollback would go ahead, 1 when it "
            "would be refused or the check did not end in time.",
        ),
    ] = 60.0,
    as_json: JsonFlag = False,
) -> None:
    """Undo a batch's effects from its backups (all jobs, or --job ones); --dry-run plans only."""
    app = state(ctx)
    accepted = app.client().rollback(batch_id, dry_run=dry_run, job_ids=job, force=force)
    if dry_run:
        _dry_run(app, batch_id, accepted, check_wait, as_json)
        return
    if watch and not dry_run:
        if as_json:
            app.output.json_line(accepted)
        else:
            app.output.say(f"{batch_id}: rollback accepted; watching it")
        code = run_monitor(
            app,
            [batch_id],
            as_json=as_json,
            restarting=[batch_id],
            succeeded=frozenset({"rolled_back"}),
        )
        raise typer.Exit(int(code))
    if as_json:
        app.output.json(accepted)
        return
    app.output.say(
        f"{batch_id}: rollback accepted (status when accepted: {accepted['status']}); "
        f"its progress: batchyard status {batch_id} (or rollback --watch to follow it)"
    )


def duplicate(ctx: typer.Context, batch_id: BatchIdArg, as_json: JsonFlag = False) -> None:
    """Create a new batch with the same items and configuration."""
    app = state(ctx)
    batch = app.client().duplicate(batch_id)
    if as_json:
        app.output.json(batch)
    else:
        app.output.say(f"Created {batch['id']} as a copy of {batch_id}: {batch['status']}.")


ACTIONS: dict[BatchAction, str] = {
    "start": "Start a queued batch now.",
    "pause": "Pause batches: running jobs finish, no new ones start.",
    "resume": "Resume paused batches.",
    "cancel": "Cancel batches: pending jobs are cancelled, running ones asked to stop.",
    "retry": "Run the failed jobs of finished batches again (and those a stop on error skipped).",
    "archive": "Archive finished batches.",
}


def register(app: typer.Typer) -> None:
    for action, doc in ACTIONS.items():
        app.command(action, rich_help_panel=PANEL)(_action(action, doc))
    app.command(rich_help_panel=PANEL)(rollback)
    app.command(rich_help_panel=PANEL)(duplicate)
