"""The MongoDB-compatible store (MongoDB, or FerretDB locally) through pymongo's async API."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


def connect_store(url: str, database: str, app_name: str) -> AsyncDatabase[Document]:
    """Creates the client lazily: nothing is contacted until the first operation."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        url, appname=app_name, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True
    )
    return client[database]


async def ping(db: AsyncDatabase[Document]) -> None:
    await db.command("ping")


def is_duplicate_key(exc: BaseException) -> bool:
    code = getattr(exc, "code", None)
    return code == 11000 or "E11000" in str(exc) or "duplicate key" in str(exc).lower()
