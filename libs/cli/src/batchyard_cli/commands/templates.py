"""Batch templates: reusable batch specs — list, show, create, update, delete, instantiate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from batchyard_cli.app_state import JsonFlag, KeyOpt, state
from batchyard_cli.catalog_view import categories_table, template_view, templates_table
from batchyard_cli.creation import MAX_INLINE_ITEMS, command_key, parse_priority, repeat_hint
from batchyard_cli.errors import InputError
from batchyard_cli.inputs import load_spec, parse_item, read_items
from batchyard_cli.render import batch_view
from batchyard_cli.sharing import ShareOpt, Visibility, VisibilityOpt

templates_app = typer.Typer(
    help="Batch templates: reusable batch specs to instantiate (`templates instantiate ID`).",
    no_args_is_help=True,
)

TemplateIdArg = Annotated[str, typer.Argument(help="The template id (t_…).", show_default=False)]
SPEC_FIELDS = "name, category, spec: {job_type, priority, tags, config, items}"


@templates_app.command("list")
def list_templates(
    ctx: typer.Context,
    category: Annotated[
        str | None, typer.Option("--category", "-c", help="Only this category.")
    ] = None,
    q: Annotated[str | None, typer.Option("--q", "-q", help="Text in the name.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after an earlier page.")] = None,
    categories: Annotated[
        bool, typer.Option("--categories", help="List the categories with their counts instead.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The templates you may see, grouped by category."""
    app = state(ctx)
    client = app.client()
    if categories:
        found = client.template_categories()
        if as_json:
            app.output.json(found)
        else:
            app.output.show(categories_table(found))
        return
    page = client.list_templates(category=category, q=q, owner=owner, limit=limit, cursor=cursor)
    if as_json:
        app.output.json(page)
    else:
        app.output.show(templates_table(page["items"], page.get("next_cursor")))


@templates_app.command("show")
def show_template(
    ctx: typer.Context, template_id: TemplateIdArg, as_json: JsonFlag = False
) -> None:
    """One template: its spec, sharing and usage."""
    app = state(ctx)
    template = app.client().get_template(template_id)
    if as_json:
        app.output.json(template)
    else:
        app.output.show(template_view(template))


SpecFileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="A template spec (JSON or YAML): " + SPEC_FIELDS + "."),
]
NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="The template's name.")]
DescriptionOpt = Annotated[str | None, typer.Option(help="A longer description.")]
CategoryOpt = Annotated[str | None, typer.Option("--category", "-c", help="Its category.")]


def _with_flags(
    body: dict[str, Any],
    name: str | None,
    description: str | None,
    category: str | None,
    visibility: Visibility | None,
    share: list[str] | None,
) -> dict[str, Any]:
    flags = {
        "name": name,
        "description": description,
        "category": category,
        "visibility": visibility.value if visibility else None,
        "shared_with": share,
    }
    return {**body, **{k: v for k, v in flags.items() if v is not None}}


@templates_app.command("create")
def create_template(
    ctx: typer.Context,
    file: SpecFileOpt = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    category: CategoryOpt = None,
    visibility: VisibilityOpt = None,
    share: ShareOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a template from a spec file; flags override its fields."""
    app = state(ctx)
    if file is None:
        raise InputError("templates create needs --file/-f with the template spec (JSON or YAML)")
    body = _with_flags(
        load_spec(file, "a template spec", SPEC_FIELDS),
        name,
        description,
        category,
        visibility,
        share,
    )
    created = app.client().create_template(body)
    if as_json:
        app.output.json(created)
    else:
        app.output.say(
            f"Created template {created['id']} ({created['name']!r}, {created['category']})."
        )


@templates_app.command("from-batch")
def template_from_batch(
    ctx: typer.Context,
    batch_id: Annotated[str, typer.Argument(help="The batch to copy (b_…).", show_default=False)],
    name: Annotated[str, typer.Option("--name", "-n", help="The template's name.")],
    category: CategoryOpt = None,
    items: Annotated[
        bool, typer.Option("--items/--no-items", help="Keep the batch's items (at most 10,000).")
    ] = True,
    visibility: VisibilityOpt = None,
    share: ShareOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Save an existing batch as a template: its job type, priority, tags, configuration and
    (unless --no-items) its items."""
    app = state(ctx)
    body = _with_flags(
        {"batch_id": batch_id, "with_items": items}, name, None, category, visibility, share
    )
    created = app.client().template_from_batch(body)
    if as_json:
        app.output.json(created)
    else:
        app.output.say(
            f"Created template {created['id']} ({created['name']!r}, {created['category']}) "
            f"from {batch_id}."
        )


@templates_app.command("update")
def update_template(
    ctx: typer.Context,
    template_id: TemplateIdArg,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Changes (JSON or YAML): any of " + SPEC_FIELDS + "."),
    ] = None,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    category: CategoryOpt = None,
    visibility: VisibilityOpt = None,
    share: ShareOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a template (owner or admin): the fields given change, the rest stay."""
    app = state(ctx)
    changes = load_spec(file, "template changes", SPEC_FIELDS) if file else {}
    changes = _with_flags(changes, name, description, category, visibility, share)
    if not changes:
        raise InputError("nothing to change: give --file or a flag such as --name or --category")
    updated = app.client().update_template(template_id, changes)
    if as_json:
        app.output.json(updated)
    else:
        app.output.say(f"Updated template {updated['id']}.")
        app.output.show(template_view(updated))


@templates_app.command("delete")
def delete_template(ctx: typer.Context, template_id: TemplateIdArg) -> None:
    """Delete a template (owner or admin). Batches made from it stay."""
    app = state(ctx)
    app.client().delete_template(template_id)
    app.output.say(f"Deleted template {template_id}.")


@templates_app.command("instantiate")
def instantiate(
    ctx: typer.Context,
    template_id: TemplateIdArg,
    name: Annotated[str | None, typer.Option("--name", "-n", help="The batch's name.")] = None,
    description: DescriptionOpt = None,
    priority: Annotated[
        str | None, typer.Option("--priority", "-p", help="low, medium, high, critical or 1-10.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag (replaces the template's).")
    ] = None,
    item: Annotated[
        list[str] | None, typer.Option("--item", help="One item as a JSON object (repeatable).")
    ] = None,
    items_file: Annotated[
        list[str] | None,
        typer.Option(
            "--items-file", "--items", "-i", help="Items: JSON lines, a JSON array or a YAML list."
        ),
    ] = None,
    max_concurrent: Annotated[
        int | None, typer.Option(min=1, help="Jobs of this batch running at once.")
    ] = None,
    idempotency_key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Make and submit a batch from a template; the flags override the template's fields and
    items given here replace its items."""
    app = state(ctx)
    overrides: dict[str, Any] = {}
    if name is not None:
        overrides["name"] = name
    if description is not None:
        overrides["description"] = description
    if priority is not None:
        overrides["priority"] = parse_priority(priority)
    if tag:
        overrides["tags"] = tag
    if max_concurrent is not None:
        overrides["config"] = {"max_concurrent_jobs": max_concurrent}
    items = [parse_item(text, f"--item {n + 1}") for n, text in enumerate(item or [])]
    for source in items_file or []:
        items.extend(read_items(source))
        if len(items) > MAX_INLINE_ITEMS:
            raise InputError(
                f"a batch from a template takes at most {MAX_INLINE_ITEMS:,} items at once"
            )
    if items:
        overrides["items"] = items
    key = command_key(idempotency_key)
    with repeat_hint(app.output, key):
        batch = app.client().instantiate_template(template_id, overrides, key)
    if as_json:
        app.output.json(batch)
        return
    app.output.say(f"Created batch {batch['id']} from template {template_id}.")
    app.output.show(batch_view(batch))


def register(app: typer.Typer) -> None:
    app.add_typer(templates_app, name="templates", rich_help_panel="Templates and schedules")
