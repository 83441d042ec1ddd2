"""Who sees a batch, template or schedule: the options every command that sets it shares."""

from __future__ import annotations

import enum
from typing import Annotated

import typer


class Visibility(enum.StrEnum):
    private = "private"
    tenant = "tenant"


VisibilityOpt = Annotated[
    Visibility | None,
    typer.Option(help="private (you, who it is shared with, admins) or tenant (everyone)."),
]
ShareOpt = Annotated[
    list[str] | None, typer.Option("--share", help="Share with this user (repeat for several).")
]
