"""The event-stream parser: named events, multi-line data, comments, ids."""

from __future__ import annotations

import pytest

from batchyard_cli.sse import ServerEvent, parse

pytestmark = pytest.mark.unit


def test_events_comments_and_multiline_data() -> None:
    lines = [
        ": heartbeat",
        "",
        "event: progress",
        "id: 7",
        'data: {"percent": 50}',
        "",
        "data: first",
        "data:second",
        "",
        "event: end",
        "",
        "event: status",
        "data: cut off by the end of the stream",
    ]
    assert list(parse(lines)) == [
        ServerEvent("progress", '{"percent": 50}', "7"),
        ServerEvent("message", "first\nsecond", "7"),
        ServerEvent("end", "", "7"),
    ]


def test_carriage_returns_and_unknown_fields_are_ignored() -> None:
    lines = ["retry: 3000\r", "event: status\r", "data: x\r", "\r"]
    assert list(parse(lines)) == [ServerEvent("status", "x")]
