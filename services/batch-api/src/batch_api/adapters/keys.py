"""API keys, stored hashed with scrypt, a memory-hard key-derivation function.

A key is a 256-bit random token shown once. Its record is found by a short fingerprint
(`k_` + the first 64 bits of its SHA-256) and confirmed by its scrypt hash (random salt,
N=2^14, r=8: about 16 MiB and tens of milliseconds per check), so a copy of the database
holds nothing that authenticates and no fast way to test a guess beyond 64 bits. Checks run
in a worker thread, and a confirmed key is remembered for `cache_s` seconds so the hash is
not on every request's path. Records stored before scrypt (found by the key's whole SHA-256)
are still accepted and rewritten in the new form on first use."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from batch_api.domain.principal import Principal, Role
from batch_api.domain.ratelimit import Limit
from servicekit.store import Document

KEY_PREFIX = "bya_"
SCRYPT: dict[str, Any] = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def lookup_id(key: str) -> str:
    """The record's `_id`: a fingerprint that finds it but cannot confirm a key."""
    return "k_" + digest(key)[:16]


def hash_key(key: str, salt: bytes) -> str:
    return hashlib.scrypt(key.encode(), salt=salt, **SCRYPT).hex()


def hashed(key: str) -> Document:
    """The stored form of a key's secret: scrypt hash and salt."""
    salt = secrets.token_bytes(16)
    return {"hash": hash_key(key, salt), "salt": salt.hex(), "scheme": "scrypt-n14-r8-p1"}


def matches(key: str, doc: Document) -> bool:
    expected = doc.get("hash")
    if not isinstance(expected, str) or not isinstance(doc.get("salt"), str):
        return False
    return hmac.compare_digest(hash_key(key, bytes.fromhex(doc["salt"])), expected)


async def record(key: str, *, tenant: str, user: str, role: Role, name: str) -> Document:
    """The stored record of a new key (its hash computed in a worker thread)."""
    now = datetime.now(UTC)
    # the store keeps milliseconds: show at creation what a listing will show
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return {
        "_id": lookup_id(key),
        "key_id": f"key_{digest(key)[:12]}",
        "tenant": tenant,
        "user": user,
        "role": role,
        "name": name,
        "created_at": now,
        "revoked": False,
        **await asyncio.to_thread(hashed, key),
    }


def limit_of(doc: Document) -> Limit | None:
    """The key's own rate limit, if an admin gave it one."""
    raw = doc.get("rate_limit")
    if not isinstance(raw, dict):
        return None
    return Limit(per_s=float(raw["per_s"]), burst=int(raw["burst"]))


class ApiKeyStore:
    def __init__(self, db: AsyncDatabase[Document], cache_s: float = 10.0) -> None:
        self.keys = db["api_keys"]
        # lookup id → (when confirmed, the key's digest, its principal or None)
        self._cache: dict[str, tuple[float, str, Principal | None]] = {}
        self._cache_s = cache_s

    async def ensure(self, key: str, *, tenant: str, user: str, role: Role, name: str) -> None:
        """Registers `key` (e.g. the bootstrap admin key) if it is not there yet."""
        if await self.keys.find_one({"_id": lookup_id(key)}, {"_id": 1}) is not None:
            return
        if await self._upgrade(key) is not None:
            return
        doc = await record(key, tenant=tenant, user=user, role=role, name=name)
        await self.keys.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    async def create(
        self, *, tenant: str, user: str, role: Role, name: str, limit: Limit | None = None
    ) -> tuple[str, Document]:
        """A new key of `tenant`: (the key itself, to be shown once; its stored record)."""
        key = new_key()
        doc = await record(key, tenant=tenant, user=user, role=role, name=name)
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
        found = [d async for d in self.keys.find({"key_id": key_id, "tenant": tenant})]
        if not found:
            return None
        revoked_at = found[0].get("revoked_at") or datetime.now(UTC)
        for doc in found:  # one record, or two while an old-form record awaits its upgrade
            await self.keys.update_one(
                {"_id": doc["_id"]}, {"$set": {"revoked": True, "revoked_at": revoked_at}}
            )
            self._cache.pop(doc["_id"], None)
        return {**found[0], "revoked": True, "revoked_at": revoked_at}

    async def resolve(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None otherwise. Cached briefly."""
        lookup, full = lookup_id(key), digest(key)
        now = time.monotonic()
        cached = self._cache.get(lookup)
        if cached is not None and now - cached[0] < self._cache_s and cached[1] == full:
            return cached[2]
        doc = await self.keys.find_one({"_id": lookup})
        if doc is not None and not await asyncio.to_thread(matches, key, doc):
            doc = None
        if doc is None:
            doc = await self._upgrade(key)
        principal = None
        if doc is not None and not doc.get("revoked"):
            principal = Principal(
                doc["key_id"], doc["tenant"], doc["user"], doc["role"], limit_of(doc)
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[lookup] = (now, full, principal)
        return principal

    async def _upgrade(self, key: str) -> Document | None:
        """A record stored before scrypt (its `_id` is the key's whole SHA-256), rewritten
        in the new form; None if there is none."""
        old = await self.keys.find_one({"_id": digest(key)})
        if old is None:
            return None
        doc = {**old, "_id": lookup_id(key), **await asyncio.to_thread(hashed, key)}
        await self.keys.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)
        await self.keys.delete_one({"_id": old["_id"]})
        return doc
