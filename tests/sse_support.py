"""Reading the API's server-sent event streams in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson


async def sse_frames(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Each frame of the stream as it comes: its event name and its data (comments, such as
    the keep-alives, are skipped)."""
    name, data = "message", b""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:].encode()
        elif line == "" and data:
            yield name, orjson.loads(data)
            name, data = "message", b""
