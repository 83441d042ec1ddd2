"""The store keeps answering when many services update it at once.

A run of a few hundred jobs at a time has the scheduler, the reporter and the executors
updating one database together. FerretDB v1's SQLite backend, as released, stopped answering
on that database once about a hundred updates ran at once (each held one connection of a pool
of 100 while it waited for a second one; devstack.install.FERRETDB_PATCHES): services stalled
until their clients gave up, minutes later. This drives that load from three clients and
expects every update to land, in order, and the store to answer right after. The updates
find their document by a field other than `_id` (the services' own are `_id`-keyed): FerretDB
reads the whole collection for them, so they overlap for longer, as a loaded store's do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

pytestmark = pytest.mark.integration

WRITERS = 300  # three clients' pools of 100 connections, all busy
ROUNDS = 4
OTHERS = 2000  # documents each update reads past


async def test_hundreds_of_concurrent_updates_all_land_and_the_store_still_answers(
    mongodb_server: str, db: AsyncDatabase[dict[str, Any]]
) -> None:
    jobs = db["jobs"]
    await jobs.insert_many(
        [{"key": f"j{k}", "runs": 0, "log": []} for k in range(WRITERS)]
        + [{"key": f"other{k}", "runs": -1} for k in range(OTHERS)]
    )
    clients: list[AsyncMongoClient[dict[str, Any]]] = [
        AsyncMongoClient(mongodb_server, maxPoolSize=100) for _ in range(3)
    ]

    async def writer(k: int) -> None:
        mine = clients[k % 3][db.name]["jobs"]
        for r in range(ROUNDS):
            if r % 2:
                found = await mine.find_one_and_update(
                    {"key": f"j{k}"},
                    {"$inc": {"runs": 1}, "$push": {"log": r}},
                    return_document=ReturnDocument.AFTER,
                )
                assert found is not None
                assert found["runs"] == r + 1
            else:
                done = await mine.update_one(
                    {"key": f"j{k}"}, {"$inc": {"runs": 1}, "$push": {"log": r}}
                )
                assert done.modified_count == 1

    try:
        await asyncio.wait_for(asyncio.gather(*(writer(k) for k in range(WRITERS))), 120)
    finally:
        for client in clients:
            await client.close()
    stored = {d["key"]: d async for d in jobs.find({"runs": {"$gte": 0}})}
    assert len(stored) == WRITERS
    assert all(d["runs"] == ROUNDS and d["log"] == list(range(ROUNDS)) for d in stored.values())
    assert await asyncio.wait_for(jobs.count_documents({"runs": ROUNDS}), 10) == WRITERS
