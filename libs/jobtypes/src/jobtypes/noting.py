"""Item fields the demo job types share to show skipping and warnings. Light on imports:
`demo.allocate` loads it in the worker fork server, under tight memory limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from jobkit import JobContext, SkipJob

NotedWarnings = Annotated[
    list[str],
    Field(default_factory=list, max_length=100, description="Warnings to note (`ctx.warn`)."),
]
SkipReason = Annotated[
    str | None,
    Field(
        default=None,
        max_length=1000,
        description="Skip the job with this reason instead (`SkipJob`): it ends `skipped`.",
    ),
]


def note(ctx: JobContext, warnings: list[str], skip_reason: str | None, where: str = "") -> None:
    """Skips the job (`SkipJob`, its reason followed by `where`) or notes the warnings, as
    the item asks."""
    if skip_reason is not None:
        raise SkipJob(skip_reason + where)
    for warning in warnings:
        ctx.warn(warning)
