"""The `batchyard` command: global options, the commands of every resource, and the one place
where errors become a message and an exit code (never a traceback)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer

from batchyard_cli import __version__
from batchyard_cli.app_state import AppState
from batchyard_cli.commands import (
    actions,
    batches,
    bulk,
    config_cmd,
    insights,
    job_types,
    jobs,
    keys,
    library,
    monitor,
    reports,
    retention,
    schedules,
    templates,
)
from batchyard_cli.config import Overrides
from batchyard_cli.errors import BatchyardError, InputError, Unreachable
from batchyard_cli.exit_codes import EXIT_CODES_HELP, for_error
from batchyard_cli.render import Output

HELP = """Create, upload, watch and manage Batchyard batches over the HTTP API.

The server and key come from --url/--api-key, else BATCHYARD_URL/BATCHYARD_API_KEY, else the
config file (~/.config/batchyard/config.toml; `batchyard config show` tells which). Every
read command takes --json."""

app = typer.Typer(
    name="batchyard",
    help=HELP,
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"batchyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="The API's base URL [env BATCHYARD_URL; default http://127.0.0.1:8000]."
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="The API key [env BATCHYARD_API_KEY].")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A TOML config file [env BATCHYARD_CONFIG]."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="A [profiles.NAME] of the config [env BATCHYARD_PROFILE]."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, help="Seconds to wait for an answer [default 30]."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    overrides = Overrides(
        url=url, api_key=api_key, timeout=timeout, config_path=config, profile=profile
    )
    ctx.obj = AppState(overrides, Output())
    ctx.call_on_close(ctx.obj.close)


for module in (
    batches,
    actions,
    bulk,
    monitor,
    jobs,
    reports,
    insights,
    templates,
    schedules,
    library,
    job_types,
    keys,
    retention,
    config_cmd,
):
    module.register(app)


def main() -> None:
    """The console script: runs the app and turns any failure into its exit code."""
    output = Output()
    try:
        app(prog_name="batchyard")
    except BatchyardError as exc:
        output.error(exc)
        sys.exit(int(for_error(exc)))
    except OSError as exc:  # a local file the command reads or writes
        local = InputError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        output.error(local)
        sys.exit(int(for_error(local)))
    except httpx.HTTPError as exc:  # a transport failure the client did not wrap
        unreachable = Unreachable(f"{type(exc).__name__}: {exc}")
        output.error(unreachable)
        sys.exit(int(for_error(unreachable)))
