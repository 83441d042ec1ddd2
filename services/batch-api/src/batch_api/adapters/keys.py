"""API keys, stored hashed. Keys are 256-bit random tokens, so a SHA-256 digest is enough to
make a stolen database useless (slow password hashes protect low-entropy secrets; these are
not), and it keeps authentication off the request's critical path."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from batch_api.domain.principal import Principal, Role
from batch_api.domain.ratelimit import Limit
from servicekit.store import Document

KEY_PREFIX = "bya_"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def limit_of(doc: Document) -> Limit | None:
    """The key's own rate limit, if an admin gave it one."""
    raw = doc.get("rate_limit")
    if not isinstance(raw, dict):
        return None
    return Limit(per_s=float(raw["per_s"]), burst=int(raw["burst"]))


class ApiKeyStore:
    def __init__(self, db: AsyncDatabase[Document], cache_s: float = 10.0) -> None:
        self.keys = db["api_keys"]
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._cache_s = cache_s

    async def ensure(self, key: str, *, tenant: str, user: str, role: Role, name: str) -> None:
        """Registers `key` (e.g. the bootstrap admin key) if it is not there yet."""
        await self.keys.update_one(
            {"_id": digest(key)},
            {
                "$setOnInsert": {
                    "key_id": f"key_{digest(key)[:12]}",
                    "tenant": tenant,
                    "user": user,
                    "role": role,
                    "name": name,
                    "created_at": datetime.now(UTC),
                    "revoked": False,
                }
            },
            upsert=True,
        )

    async def create(
        self, *, tenant: str, user: str, role: Role, name: str, limit: Limit | None = None
    ) -> tuple[str, Document]:
        """A new key of `tenant`: (the key itself, to be shown once; its stored record)."""
        key = new_key()
        now = datetime.now(UTC)
        # the store keeps milliseconds: show at creation what a listing will show
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        doc: Document = {
            "_id": digest(key),
            "key_id": f"key_{digest(key)[:12]}",
            "tenant": tenant,
            "user": user,
            "role": role,
            "name": name,
            "created_at": now,
            "revoked": False,
        }
        if limit is not None:
            doc["rate_limit"] = {"per_s": limit.per_s, "burst": limit.burst}
        await self.keys.insert_one(doc)
        return key, doc

    async def list(self, tenant: str) -> list[Document]:
        """The tenant's keys (revoked ones too), oldest first. Keys are few, so the scan
        this filter costs on the store stays small."""
        docs = [d async for d in self.keys.find({"tenant": tenant})]
        return sorted(docs, key=lambda d: (d["created_at"], d["key_id"]))

    async def revoke(self, tenant: str, key_id: str) -> Document | None:
        """Revokes the tenant's key `key_id`; None if the tenant has no such key. Takes
        effect at once in this process; another API process may accept the key for up to
        `cache_s` seconds more."""
        doc = await self.keys.find_one({"key_id": key_id, "tenant": tenant})
        if doc is None:
            return None
        revoked_at = doc.get("revoked_at") or datetime.now(UTC)
        await self.keys.update_one(
            {"_id": doc["_id"]}, {"$set": {"revoked": True, "revoked_at": revoked_at}}
        )
        self._cache.pop(doc["_id"], None)
        return {**doc, "revoked": True, "revoked_at": revoked_at}

    async def resolve(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None otherwise. Cached briefly."""
        h = digest(key)
        now = time.monotonic()
        cached = self._cache.get(h)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        doc = await self.keys.find_one({"_id": h})
        principal = None
        if doc is not None and not doc.get("revoked"):
            principal = Principal(
                doc["key_id"], doc["tenant"], doc["user"], doc["role"], limit_of(doc)
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[h] = (now, principal)
        return principal
