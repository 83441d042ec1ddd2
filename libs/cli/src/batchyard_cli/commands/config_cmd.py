"""`batchyard config show`: which server and key the CLI would use, and from where."""

from __future__ import annotations

import os

import typer

from batchyard_cli.app_state import JsonFlag, state
from batchyard_cli.config import default_config_path
from batchyard_cli.render import mapping_view

config_app = typer.Typer(help="The CLI's own configuration.", no_args_is_help=True)


def mask(key: str | None) -> str | None:
    """`bya_1234…cdef`: enough to tell keys apart, not enough to use one."""
    if key is None:
        return None
    if len(key) <= 12:
        return "…" * 3
    return f"{key[:8]}…{key[-4:]}"


@config_app.command("show")
def show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The resolved URL, key (masked), timeout and profile, with where each came from."""
    app = state(ctx)
    config = app.config()
    data = {
        "url": config.url,
        "api_key": mask(config.api_key),
        "timeout": config.timeout,
        "profile": config.profile,
        "config_file": str(config.config_path or default_config_path(os.environ)),
        "config_file_found": config.config_path is not None,
        "sources": dict(config.sources),
    }
    if as_json:
        app.output.json(data)
    else:
        app.output.show(mapping_view(data))


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config", rich_help_panel="Administration")
