"""Event ids: random version-4 UUIDs as 32 hex digits, different in a forked child."""

from __future__ import annotations

import os
import uuid

import pytest

from contracts.envelope import new_event_id

pytestmark = pytest.mark.unit


def test_event_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for event_id in ids[:1000]:
        assert len(event_id) == 32
        parsed = uuid.UUID(event_id)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == event_id


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, "".join(new_event_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1000).decode()
    os.close(read)
    parent = "".join(new_event_id() for _ in range(10))
    assert len(child) == 320
    assert child != parent
