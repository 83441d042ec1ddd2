"""API keys on the real store: what is stored cannot authenticate (a fingerprint and a scrypt
hash, never the key or its whole digest), keys resolve to their principal until revoked, and
records stored before scrypt still work and are rewritten in the new form on first use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from batch_api.adapters.keys import ApiKeyStore, digest, hash_key, lookup_id, new_key

pytestmark = pytest.mark.integration


def stored_strings(doc: dict[str, Any]) -> list[str]:
    return [str(v) for v in doc.values()]


async def test_a_key_is_stored_as_a_fingerprint_and_scrypt_hash_only(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    keys = ApiKeyStore(db)
    key, doc = await keys.create(tenant="t", user="ann", role="operator", name="ann's")
    stored = await db["api_keys"].find_one({"_id": doc["_id"]})
    assert stored is not None
    assert stored["_id"] == lookup_id(key)
    assert len(stored["_id"]) == 18
    strings = stored_strings(stored)
    assert not any(key in s or digest(key) in s for s in strings)
    assert stored["hash"] == hash_key(key, bytes.fromhex(stored["salt"]))
    assert stored["scheme"] == "scrypt-n14-r8-p1"

    who = await keys.resolve(key)
    assert who is not None
    assert (who.tenant, who.user, who.role) == ("t", "ann", "operator")
    assert await keys.resolve(new_key()) is None
    # a forged record under the right fingerprint does not let a key in
    other = new_key()
    await db["api_keys"].insert_one({**stored, "_id": lookup_id(other)})
    assert await ApiKeyStore(db).resolve(other) is None

    assert await keys.revoke("t", doc["key_id"]) is not None
    assert await keys.resolve(key) is None
    assert await ApiKeyStore(db).resolve(key) is None


async def test_a_record_from_before_scrypt_works_once_and_is_rewritten(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    key = new_key()
    await db["api_keys"].insert_one(
        {
            "_id": digest(key),
            "key_id": f"key_{digest(key)[:12]}",
            "tenant": "t",
            "user": "old",
            "role": "admin",
            "name": "old key",
            "created_at": datetime.now(UTC),
            "revoked": False,
        }
    )
    who = await ApiKeyStore(db).resolve(key)
    assert who is not None
    assert who.user == "old"
    assert await db["api_keys"].find_one({"_id": digest(key)}) is None
    upgraded = await db["api_keys"].find_one({"_id": lookup_id(key)})
    assert upgraded is not None
    assert upgraded["hash"] == hash_key(key, bytes.fromhex(upgraded["salt"]))
    assert await ApiKeyStore(db).resolve(key) is not None


async def test_ensure_registers_a_bootstrap_key_once(db: AsyncDatabase[dict[str, Any]]) -> None:
    key = new_key()
    for _ in range(2):
        await ApiKeyStore(db).ensure(key, tenant="t", user="admin", role="admin", name="boot")
    assert [d["_id"] async for d in db["api_keys"].find({})] == [lookup_id(key)]
    assert (await ApiKeyStore(db).resolve(key)) is not None


async def test_a_busy_key_is_hashed_once_and_a_revocation_still_shows(
    db: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many requests with one key arriving together, and again after the cache time, cost one
    scrypt check: the re-read record's hash is unchanged. A revocation in the store (made by
    another API process) is seen once the cache time has passed."""
    from batch_api.adapters import keys as keys_module

    checks = 0
    real_matches = keys_module.matches

    def counting(key: str, doc: dict[str, Any]) -> bool:
        nonlocal checks
        checks += 1
        return real_matches(key, doc)

    monkeypatch.setattr(keys_module, "matches", counting)
    keys = ApiKeyStore(db, cache_s=0.2)
    key, doc = await keys.create(tenant="t", user="bo", role="viewer", name="bo's")
    principals = await asyncio.gather(*[keys.resolve(key) for _ in range(50)])
    assert {p.user if p else None for p in principals} == {"bo"}
    await asyncio.sleep(0.3)
    assert await keys.resolve(key) is not None
    assert checks == 1
    await ApiKeyStore(db).revoke("t", doc["key_id"])  # another process
    await asyncio.sleep(0.3)
    assert await keys.resolve(key) is None
