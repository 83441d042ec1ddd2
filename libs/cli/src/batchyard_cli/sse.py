"""A parser of `text/event-stream` (the HTML living standard's server-sent events): lines in,
events out. Comment lines (`: heartbeat`) are skipped; `data` lines accumulate; a blank line
dispatches the event. Unlike the standard, a named event without `data` is still dispatched
(an `end` event needs no payload)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str
    id: str | None = None


def parse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Events from the stream's lines (without their line endings). An event still open when
    the stream ends is dropped, as the standard says."""
    name = ""
    data: list[str] = []
    last_id: str | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or name:
                yield ServerEvent(event=name or "message", data="\n".join(data), id=last_id)
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\0" not in value:
            last_id = value
