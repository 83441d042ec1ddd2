"""Where backups are recorded (the executors write them with job types that change data)."""

from __future__ import annotations

from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.store import Document


class Backups(Protocol):
    async def count(self, batch_id: str) -> int:
        """How many backups the batch's jobs recorded."""


class MongoBackups:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.backups = db["backups"]

    async def count(self, batch_id: str) -> int:
        return await self.backups.count_documents({"batch_id": batch_id})
