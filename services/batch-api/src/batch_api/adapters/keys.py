"""API keys, stored hashed with scrypt, a memory-hard key-derivation function.

A key is a 256-bit random token shown once. Its record is found by a short fingerprint
(`k_` + the first 64 bits of its SHA-256) and confirmed by its scrypt hash (random salt,
N=2^14, r=8: about 16 MiB and tens of milliseconds per check), so a copy of the database
holds nothing that authenticates and no fast way to test a guess beyond 64 bits. Checks run
in a worker thread. A key's principal is remembered for `cache_s` seconds, and requests that
arrive together with one key share one lookup; when the record is read again it is not hashed
again unless its stored hash changed, so scrypt runs once per key and process, not on the
request path of a busy client. Records stored before scrypt (found by the key's whole SHA-256)
are still accepted and rewritten in the new form on first use."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from batch_api.adapters.readcache import ReadCache
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


class LastAdminKey(Exception):
    """Revoking this key would leave its tenant without an admin key."""


def limit_of(doc: Document) -> Limit | None:
    """The key's own rate limit, if an admin gave it one."""
    raw = doc.get("rate_limit")
    if not isinstance(raw, dict):
        return None
    return Limit(per_s=float(raw["per_s"]), burst=int(raw["burst"]))


class ApiKeyStore:
    def __init__(self, db: AsyncDatabase[Document], cache_s: float = 10.0) -> None:
        self.keys = db["api_keys"]
        self._version = 0  # moves on when this process revokes a key
        # the key's digest → its principal (or None), re-read from the store every `cache_s`
        self._principals: ReadCache[Principal | None] = ReadCache(cache_s, lambda: self._version)
        # the key's digest → the stored hash it was confirmed against: a re-read record whose
        # hash is unchanged needs no new scrypt check
        self._confirmed: OrderedDict[str, str] = OrderedDict()

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
        `cache_s` seconds more. Raises `LastAdminKey` rather than revoke the tenant's only
        unrevoked admin key (nobody could make or revoke keys afterwards)."""
        found = [d async for d in self.keys.find({"key_id": key_id, "tenant": tenant})]
        if not found:
            return None
        if found[0].get("role") == "admin" and not found[0].get("revoked"):
            admins = {
                d["key_id"]
                for d in await self.list(tenant)
                if d.get("role") == "admin" and not d.get("revoked")
            }
            if admins <= {key_id}:
                raise LastAdminKey(key_id)
        revoked_at = found[0].get("revoked_at") or datetime.now(UTC)
        for doc in found:  # one record, or two while an old-form record awaits its upgrade
            await self.keys.update_one(
                {"_id": doc["_id"]}, {"$set": {"revoked": True, "revoked_at": revoked_at}}
            )
        self._version += 1
        return {**found[0], "revoked": True, "revoked_at": revoked_at}

    async def resolve(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None otherwise. Answered from memory for
        `cache_s` seconds; concurrent requests with one key share one check."""
        return await self._principals.get(digest(key), lambda: self._resolve(key))

    async def _resolve(self, key: str) -> Principal | None:
        full = digest(key)
        doc = await self.keys.find_one({"_id": lookup_id(key)})
        if doc is not None and self._confirmed.get(full) != doc.get("hash"):
            if await asyncio.to_thread(matches, key, doc):
                self._confirmed[full] = doc["hash"]
                while len(self._confirmed) > 10_000:
                    self._confirmed.popitem(last=False)
            else:
                doc = None
        if doc is None:
            doc = await self._upgrade(key)
        if doc is None or doc.get("revoked"):
            return None
        return Principal(doc["key_id"], doc["tenant"], doc["user"], doc["role"], limit_of(doc))

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
