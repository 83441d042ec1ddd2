"""API keys (admin): create, list, revoke."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from batchyard_cli.app_state import JsonFlag, state
from batchyard_cli.errors import InputError
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
    user: Annotated[
        str | None, typer.Option(help="Who the key acts as [default: its name].")
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(min=0.001, help="Its own limit in requests a second [default: the API's]."),
    ] = None,
    burst: Annotated[
        int | None, typer.Option(min=1, help="Requests at once with --rate-limit [default 2×].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key. The key itself is shown once, now."""
    app = state(ctx)
    if burst is not None and rate_limit is None:
        raise InputError("--burst goes with --rate-limit")
    body: dict[str, Any] = {"name": name, "role": role.value}
    if user:
        body["user"] = user
    if rate_limit is not None:
        body["rate_limit"] = {"per_s": rate_limit, "burst": burst or max(1, round(rate_limit * 2))}
    created = app.client().create_key_with(body)
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
