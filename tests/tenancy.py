"""Keys of other tenants and roles, registered in a stack's store the way the API keeps them
(the API lets an admin make keys of their own tenant only)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from stack_support import Stack

from batch_api.adapters.keys import ApiKeyStore
from batch_api.domain.principal import Role


async def registered_key(stack: Stack, *, tenant: str, user: str, role: Role) -> str:
    key = f"bya_{role}_{uuid.uuid4().hex}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        await ApiKeyStore(client[stack.database]).ensure(
            key, tenant=tenant, user=user, role=role, name=f"test key of {user}"
        )
    finally:
        await client.close()
    return key


async def other_tenant_admin(stack: Stack) -> str:
    """The admin key of a new tenant of its own."""
    return await registered_key(
        stack, tenant=f"other-{uuid.uuid4().hex[:8]}", user="olga", role="admin"
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def key_for(api: httpx.AsyncClient, user: str, role: str) -> dict[str, str]:
    """Headers of a new key of the API's tenant, made by the admin behind `api`."""
    made = await api.post("/v1/keys", json={"name": f"{user} key", "role": role, "user": user})
    assert made.status_code == 201, made.text
    return auth(made.json()["key"])
