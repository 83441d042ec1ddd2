"""API keys (admin): create, list, revoke."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from batchyard_cli.app_state import JsonFlag, state
from batchyard_cli.render import keys_table

keys_app = typer.Typer(help="API keys (admin): create, list, revoke.", no_args_is_help=True)


class RoleChoice(enum.StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    role: Annotated[RoleChoice, typer.Option(help="What the key may do.")] = RoleChoice.viewer,
    as_json: JsonFlag = False,
) -> None:
    """Create a key. The key itself is shown once, now."""
    app = state(ctx)
    created = app.client().create_key(name, role.value)
    if as_json:
        app.output.json(created)
        return
    app.output.say(f"Created {created['role']} key {created['id']} for {name!r}:")
    app.output.lines([created["key"]])
    app.output.note("store it now: the server keeps only its hash")


@keys_app.command("list")
def list_keys(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every key: id, name, role, creation time (never the key itself)."""
    app = state(ctx)
    keys = app.client().list_keys()
    if as_json:
        app.output.json(keys)
    else:
        app.output.show(keys_table(keys))


@keys_app.command("revoke")
def revoke_key(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    app = state(ctx)
    app.client().delete_key(key_id)
    app.output.say(f"Revoked {key_id}.")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys", rich_help_panel="Administration")
