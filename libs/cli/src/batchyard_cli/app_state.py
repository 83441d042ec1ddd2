"""What every command shares: the global flags, the output, and a client built on first use
(so `--help` and usage errors never read the config or connect)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import typer

from batchyard_cli.client import BatchyardClient
from batchyard_cli.config import Config, Overrides, load_config
from batchyard_cli.render import Output


@dataclass
class AppState:
    overrides: Overrides
    output: Output = field(default_factory=Output)
    _config: Config | None = None
    _client: BatchyardClient | None = None

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.overrides)
        return self._config

    def client(self) -> BatchyardClient:
        if self._client is None:
            config = self.config()
            self._client = BatchyardClient(config.url, config.api_key, timeout=config.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def state(ctx: typer.Context) -> AppState:
    """The `AppState` the root callback put on the context."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(Overrides())
        root.call_on_close(root.obj.close)
    return root.obj


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the server's JSON answer instead of a table.")
]
BatchIdArg = Annotated[str, typer.Argument(help="The batch id (b_…).", show_default=False)]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        help="Run the command again with the same key to get what the first run made (an "
        "upload cut short goes on where it stopped) instead of making it twice.",
    ),
]
