"""Reading the job views of a batch in tests. The batch view and the job views are
projected from different topics, so they converge separately: poll with a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pymongo import AsyncMongoClient

from servicekit.buckets import view_buckets
from servicekit.jobviews import unpack_bucket


async def job_views(mongodb_url: str, database: str, batch_id: str) -> list[dict[str, Any]]:
    """The batch's job views as the API reads them (stored packed: `servicekit.jobviews`)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        db = client[database]
        layout = view_buckets(await db["batch_views"].find_one({"_id": batch_id}))
        return [
            view
            async for doc in db["job_views"].find({"batch_id": batch_id})
            for view in unpack_bucket(doc, batch_id, layout, doc["bucket"]).values()
        ]
    finally:
        await client.close()


async def settled_job_views(
    mongodb_url: str,
    database: str,
    batch_id: str,
    settled: Callable[[list[dict[str, Any]]], bool],
    within_s: float = 60,
) -> list[dict[str, Any]]:
    """The job views once `settled(views)` holds; the last ones seen after the deadline."""
    deadline = time.monotonic() + within_s
    views = await job_views(mongodb_url, database, batch_id)
    while not settled(views) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        views = await job_views(mongodb_url, database, batch_id)
    return views
