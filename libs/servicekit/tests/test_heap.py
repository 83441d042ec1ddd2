"""What a service does to its heap once started (servicekit.runtime.settle_heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from servicekit.runtime import GC_GEN0_THRESHOLD, settle_heap

pytestmark = pytest.mark.unit


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored_gc")
def test_what_exists_at_start_is_no_longer_walked_and_young_collections_are_rarer() -> None:
    _, gen1, gen2 = gc.get_threshold()
    startup = [Node() for _ in range(100)]

    settle_heap()

    assert gc.get_freeze_count() >= len(startup)
    walked = {id(o) for o in gc.get_objects()}  # the generations a collection walks
    assert not any(id(n) in walked for n in startup)
    assert gc.get_threshold() == (GC_GEN0_THRESHOLD, gen1, gen2)
    # garbage made afterwards is still collected
    before = len(gc.garbage)
    later = Node()
    del later
    assert gc.collect() >= 1
    assert len(gc.garbage) == before
