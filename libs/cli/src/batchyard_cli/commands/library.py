"""The template library a `templates.consolidate` batch works on: import, list, show, change
and delete templates, plan and start a consolidation, and decide the conflicts it parked."""

from __future__ import annotations

import enum
import itertools
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from batchyard_cli.app_state import JsonFlag, KeyOpt, state
from batchyard_cli.catalog_view import conflicts_table, library_table, library_template_view
from batchyard_cli.commands.monitor import run_monitor
from batchyard_cli.creation import command_key, repeat_hint
from batchyard_cli.errors import InputError
from batchyard_cli.inputs import read_items

library_app = typer.Typer(
    help="The template library: import, list, change, consolidate (merge, replace or archive "
    "duplicates) and decide conflicts.",
    no_args_is_help=True,
)

IMPORT_CHUNK = 10_000  # templates a request takes at most (all of a request, or none)


class Status(enum.StrEnum):
    active = "active"
    merged = "merged"
    archived = "archived"


class Settable(enum.StrEnum):
    """The statuses a person sets (`merged` is a consolidation's doing)."""

    active = "active"
    archived = "archived"


class Operation(enum.StrEnum):
    merge = "merge"
    replace_ = "replace"  # (a member named `replace` would hide str.replace)
    archive = "archive"


class Resolution(enum.StrEnum):
    automatic = "automatic"
    interactive = "interactive"
    skip = "skip"


class Backup(enum.StrEnum):
    automatic = "automatic"
    manual = "manual"
    none = "none"


@library_app.command("import")
def import_templates(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="Templates ({name, category, body, variables, tags}): JSON lines, a JSON "
            "array or a YAML list; - for stdin.",
            show_default=False,
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Adds templates to the library, 10,000 a request (each request all or none)."""
    app = state(ctx)
    client = app.client()
    ids: list[str] = []
    templates = read_items(source)
    while chunk := list(itertools.islice(templates, IMPORT_CHUNK)):
        ids += client.import_library(chunk)["ids"]
    if not ids:
        raise InputError(f"{source}: no templates in it")
    if as_json:
        app.output.json({"imported": len(ids), "ids": ids})
    else:
        app.output.say(f"Imported {len(ids)} template(s).", style="bold")


@library_app.command("list")
def list_templates(
    ctx: typer.Context,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only templates with this tag.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only this status.")] = None,
    q: Annotated[str | None, typer.Option("--q", "-q", help="Text in the name.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 100,
    cursor: Annotated[str | None, typer.Option(help="Continue after an earlier page.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Library templates by id: name, category, status (merged ones name the one kept)."""
    app = state(ctx)
    page = app.client().list_library(
        category=category,
        tag=tag,
        status=status.value if status else None,
        q=q,
        limit=limit,
        cursor=cursor,
    )
    if as_json:
        app.output.json(page)
    else:
        app.output.show(library_table(page["items"], page.get("next_cursor")))


@library_app.command("show")
def show_template(
    ctx: typer.Context,
    template_id: Annotated[str, typer.Argument(help="The template id.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """One library template, with its body."""
    app = state(ctx)
    template = app.client().get_library_template(template_id)
    if as_json:
        app.output.json(template)
    else:
        app.output.show(library_template_view(template))


@library_app.command("update")
def update_template(
    ctx: typer.Context,
    template_id: Annotated[str, typer.Argument(help="The template id.", show_default=False)],
    name: Annotated[str | None, typer.Option(help="Its new name.")] = None,
    category: Annotated[str | None, typer.Option(help="Its new category.")] = None,
    body: Annotated[str | None, typer.Option(help="Its new text.")] = None,
    body_file: Annotated[
        Path | None,
        typer.Option("--body-file", help="Its new text from a file; - for stdin.", dir_okay=False),
    ] = None,
    variable: Annotated[
        list[str] | None,
        typer.Option("--variable", help="A variable (repeatable; replaces its variables)."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag (repeatable; replaces its tags).")
    ] = None,
    no_tags: Annotated[bool, typer.Option("--no-tags", help="Remove every tag.")] = False,
    status: Annotated[
        Settable | None,
        typer.Option(help="archived takes it out of consolidations; active brings it back."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a library template: the fields given change, the rest stay. A document written
    outside the API (`show` lists what it lacks) is mended by giving what it lacks."""
    if body is not None and body_file is not None:
        raise InputError("give the new text as --body or --body-file, not both")
    if tag and no_tags:
        raise InputError("--tag and --no-tags contradict each other")
    changes: dict[str, Any] = {"name": name, "category": category, "body": body}
    if body_file is not None:
        changes["body"] = _read_text(body_file)
    if variable:
        changes["variables"] = variable
    if tag or no_tags:
        changes["tags"] = tag or []
    if status is not None:
        changes["status"] = status.value
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise InputError("nothing to change: give a flag such as --name, --body-file or --status")
    app = state(ctx)
    updated = app.client().update_library_template(template_id, changes)
    if as_json:
        app.output.json(updated)
    else:
        app.output.say(f"Updated library template {updated['id']}.", style="bold")
        app.output.show(library_template_view(updated))


@library_app.command("delete")
def delete_template(
    ctx: typer.Context,
    template_id: Annotated[str, typer.Argument(help="The template id.", show_default=False)],
) -> None:
    """Delete a library template. To keep it but leave it out of consolidations, `update
    --status archived`; a consolidation's backup keeps what it changed, not this."""
    app = state(ctx)
    app.client().delete_library_template(template_id)
    app.output.say(f"Deleted library template {template_id}.")


def _read_text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read it ({error})") from error


@library_app.command("consolidate")
def consolidate(
    ctx: typer.Context,
    template_id: Annotated[
        list[str] | None,
        typer.Option("--id", help="A template to include (repeat); else --category/--tag/--q."),
    ] = None,
    category: Annotated[str | None, typer.Option(help="Templates of this category.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Templates with this tag (repeat: any).")
    ] = None,
    q: Annotated[str | None, typer.Option("--q", "-q", help="Text in the name.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every template of the library.")
    ] = False,
    operation: Annotated[
        Operation,
        typer.Option(
            help="merge: keep one and point the duplicates at it; replace: remove "
            "the duplicates; archive: archive them."
        ),
    ] = Operation.merge,
    conflicts: Annotated[
        Resolution,
        typer.Option(
            help="Same name, different content: automatic (the newest keeps the name, the "
            "others are renamed), "
            "interactive (park for a decision: `batchyard library decide`) or skip."
        ),
    ] = Resolution.automatic,
    threshold: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Similarity that counts as a duplicate.")
    ] = 0.9,
    backup: Annotated[Backup, typer.Option(help="Backups a rollback restores from.")] = (
        Backup.automatic
    ),
    per_job: Annotated[int, typer.Option(min=1, max=1000, help="Templates a job takes.")] = 50,
    max_concurrent: Annotated[int, typer.Option(min=1, max=1000, help="Jobs at once.")] = 2,
    stop_on_error: Annotated[
        bool, typer.Option("--stop-on-error", help="Stop at the first job that fails for good.")
    ] = False,
    name: Annotated[str | None, typer.Option("--name", "-n", help="The batch's name.")] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Only say what it would do; change nothing.")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Then monitor the batch until it finishes.")
    ] = False,
    idempotency_key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Consolidates library templates as a `templates.consolidate` batch (or, with --plan,
    says what it would do: templates, duplicates, conflicts, jobs)."""
    app = state(ctx)
    body: dict[str, Any] = {
        "operation": operation.value,
        "conflict_resolution": conflicts.value,
        "similarity_threshold": threshold,
        "backup_strategy": backup.value,
        "templates_per_job": per_job,
        "max_concurrent_jobs": max_concurrent,
        "stop_on_error": stop_on_error,
    }
    if name:
        body["name"] = name
    if template_id:
        body["template_ids"] = template_id
    scope = {"category": category, "tags": tag, "name_contains": q}
    if any(v is not None for v in scope.values()):
        body["filter"] = {k: v for k, v in scope.items() if v is not None}
    scoped = "template_ids" in body or "filter" in body
    if everything and scoped:
        raise InputError("--all takes every template: leave out --id, --category, --tag, --q")
    if not everything and not scoped:
        raise InputError("say which templates: --id, --category, --tag or --q, or --all")
    client = app.client()
    if plan:
        planned = client.plan_consolidation(body)
        if as_json:
            app.output.json(planned)
        else:
            app.output.say(_plan_text(planned))
        return
    key = command_key(idempotency_key)
    with repeat_hint(app.output, key):
        created = client.start_consolidation(body, key)
    if as_json:
        app.output.json(created)
    elif created.get("plan") is None:  # a repeat: the batch the first run made
        app.output.say(
            f"Consolidating in batch {created['batch_id']} (made by an earlier run with this key)",
            style="bold",
        )
    else:
        app.output.say(
            f"Consolidating in batch {created['batch_id']}: {_plan_text(created['plan'])}",
            style="bold",
        )
    if watch:
        raise typer.Exit(int(run_monitor(app, [created["batch_id"]], as_json=as_json)))


def _plan_text(plan: dict[str, Any]) -> str:
    text = (
        f"{plan['templates']} template(s), {plan['duplicates']} duplicate(s), "
        f"{plan['conflicts']} conflict(s), {plan['jobs']} job(s)"
    )
    missing = plan.get("missing_ids") or []
    return text + (f"; not in the library: {', '.join(missing)}" if missing else "")


@library_app.command("conflicts")
def list_conflicts(
    ctx: typer.Context,
    batch_id: Annotated[str, typer.Argument(help="The consolidation batch.", show_default=False)],
    waiting: Annotated[
        bool, typer.Option("--waiting", help="Only those still awaiting a decision.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The conflicts a consolidation parked (conflict_resolution interactive), oldest first."""
    app = state(ctx)
    found = app.client().conflicts(batch_id, "awaiting_decision" if waiting else None)
    if as_json:
        app.output.json(found)
    else:
        app.output.show(conflicts_table(found))


@library_app.command("decide")
def decide(
    ctx: typer.Context,
    conflict_id: Annotated[str, typer.Argument(help="The conflict id.", show_default=False)],
    keep: Annotated[
        str, typer.Option(help="The template that keeps the name; the others are archived.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Decides a parked conflict; its job runs again to apply it."""
    app = state(ctx)
    decided = app.client().decide_conflict(conflict_id, keep)
    if as_json:
        app.output.json(decided)
    else:
        app.output.say(
            f"Decided {decided['id']}: {keep} keeps the name {decided['name']!r}; "
            f"job {decided['job_id']} runs again to apply it.",
            style="bold",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(library_app, name="library", rich_help_panel="Templates and schedules")
