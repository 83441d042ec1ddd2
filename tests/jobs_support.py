"""Helpers of the job-type e2e tests: waiting for a batch, reading and writing the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


async def wait_for_status(
    api: httpx.AsyncClient, batch_id: str, statuses: set[str], within_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api.get(f"/v1/batches/{batch_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"batch {batch_id} stayed {body.get('status')}: {body.get('progress')}")


@asynccontextmanager
async def store(mongodb_url: str, database: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        yield client[database]
    finally:
        await client.close()
