"""What the API owns about batches: the registry (tenant, owner, submission state), the
uploaded item chunks (the outbox for submission) and idempotency keys.

Collections: `batches`, `batch_uploads`, `idempotency_keys`. A batch whose submission did not
finish publishing (status `submitting`) is published again from its stored chunks; events
have deterministic ids, so consumers recognise the repeats."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.store import Document


class BatchRegistry:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.batches = db["batches"]
        self.uploads = db["batch_uploads"]
        self.idempotency = db["idempotency_keys"]

    async def setup(self) -> None:
        await self.uploads.create_index([("batch_id", ASCENDING), ("chunk", ASCENDING)])
        await self.batches.create_index([("submission", ASCENDING)])

    async def insert(self, doc: Document) -> bool:
        """False if a batch with this id is already stored (a concurrent idempotent retry)."""
        try:
            await self.batches.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, batch_id: str) -> Document | None:
        return await self.batches.find_one({"_id": batch_id})

    async def set(self, batch_id: str, fields: dict[str, Any]) -> None:
        await self.batches.update_one({"_id": batch_id}, {"$set": fields})

    async def put_chunk(
        self, batch_id: str, chunk: int, first_index: int, items: list[dict[str, Any]]
    ) -> None:
        doc = {
            "_id": f"{batch_id}:{chunk}",
            "batch_id": batch_id,
            "chunk": chunk,
            "first_index": first_index,
            "items": items,
        }
        with contextlib.suppress(DuplicateKeyError):
            await self.uploads.insert_one(doc)

    async def chunks(self, batch_id: str) -> AsyncIterator[Document]:
        cursor = self.uploads.find({"batch_id": batch_id}).sort("chunk", ASCENDING)
        async for doc in cursor:
            yield doc

    async def unfinished_submissions(self, older_than: datetime) -> list[str]:
        cursor = self.batches.find(
            {"submission": "publishing", "submitted_at": {"$lt": older_than}}, {"_id": 1}
        )
        return [d["_id"] async for d in cursor]

    async def claim_idempotency_key(
        self, tenant: str, key: str, body_hash: str, batch_id: str, at: datetime
    ) -> Document | None:
        """Records the key; returns the earlier record if the key was already used."""
        doc = {
            "_id": f"{tenant}:{key}",
            "body_hash": body_hash,
            "batch_id": batch_id,
            "created_at": at,
        }
        try:
            await self.idempotency.insert_one(doc)
        except DuplicateKeyError:
            return await self.idempotency.find_one({"_id": doc["_id"]})
        return None
