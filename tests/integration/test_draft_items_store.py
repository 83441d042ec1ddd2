"""Draft editing on the real store: concurrent removals from one chunk all land and are
counted once (the API serialises one batch's edits: FerretDB v1 does not apply concurrent
conditional updates of one document atomically), the phase guard refuses a submitted batch,
and a sealed chunk refuses any further removal."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from batch_api.adapters.registry import BatchRegistry, live_items
from batch_api.adapters.views import ReadModels
from batch_api.domain.principal import Principal
from batch_api.handlers.batches import BatchService
from batch_api.handlers.items import DraftItems
from contracts.topics import Topics
from servicekit.publisher import Outgoing

pytestmark = pytest.mark.integration

EDITABLE = ["draft", "uploading"]


async def a_draft(registry: BatchRegistry, items: int) -> str:
    batch_id = "b_draft"
    await registry.insert(
        {
            "_id": batch_id,
            "tenant": "t",
            "phase": "draft",
            "total": items,
            "chunks": 1,
            "created_at": datetime.now(UTC),
        }
    )
    await registry.put_chunk(batch_id, 0, 0, [{"n": i} for i in range(items)])
    return batch_id


class Unused:
    async def publish(self, messages: Sequence[Outgoing]) -> None:
        raise AssertionError("removing items publishes nothing")


async def test_concurrent_removals_from_one_chunk_all_land_once(
    db: AsyncDatabase[dict[str, object]],
) -> None:
    registry = BatchRegistry(db)  # type: ignore[arg-type]
    service = BatchService(registry, ReadModels(db), Unused(), Topics())  # type: ignore[arg-type]
    items = DraftItems(service, registry)
    who = Principal("k", "t", "u", "operator")
    batch_id = await a_draft(registry, 40)
    results = await asyncio.gather(
        *(items.remove_ids(batch_id, [f"0-{i}", f"0-{i + 1}"], who) for i in range(0, 20, 2)),
        items.remove_ids(batch_id, ["0-0", "0-1", "0-2"], who),  # overlaps: counts what is new
    )
    assert sum(r.removed for r in results) == 20
    chunk = await registry.chunk(batch_id, 0)
    assert chunk is not None
    assert [item["n"] for _, item in live_items(chunk)] == list(range(20, 40))
    doc = await registry.get(batch_id)
    assert doc is not None
    assert doc["total"] == 20


async def test_a_submitted_batch_and_a_sealed_chunk_refuse_removals(
    db: AsyncDatabase[dict[str, object]],
) -> None:
    registry = BatchRegistry(db)  # type: ignore[arg-type]
    batch_id = await a_draft(registry, 5)
    assert await registry.remove_items(batch_id, 0, {1}) == 1
    sealed = await registry.seal_chunk(batch_id, 0)
    assert sealed is not None
    assert sealed["removed"] == [1]
    assert await registry.remove_items(batch_id, 0, {2}) is None
    assert await registry.set_if(batch_id, {"phase": "draft"}, {"phase": "submitted"})
    assert not await registry.mark_edited(batch_id, EDITABLE)
    await registry.add_to_total(batch_id, EDITABLE, -1)
    doc = await registry.get(batch_id)
    assert doc is not None
    assert doc["total"] == 5  # the phase guard kept the count for the compaction to set
    await registry.rewrite_chunk(batch_id, 0, [item for _, item in live_items(sealed)], 0)
    chunk = await registry.chunk(batch_id, 0)
    assert chunk is not None
    assert chunk["items"] == [{"n": 0}, {"n": 2}, {"n": 3}, {"n": 4}]
    assert chunk["removed"] == []
