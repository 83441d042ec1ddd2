"""API keys over HTTP: an admin creates a key (shown once), lists the tenant's keys and
revokes one; the new key's role is enforced, and a revoked key is a 401; a tenant's last admin
key cannot be revoked."""

from __future__ import annotations

import httpx
import pytest
from stack_support import Stack
from tenancy import auth, other_tenant_admin

pytestmark = pytest.mark.e2e


async def test_create_use_list_and_revoke_keys(api: httpx.AsyncClient, stack: Stack) -> None:
    created = await api.post("/v1/keys", json={"name": "ci viewer", "role": "viewer"})
    assert created.status_code == 201, created.text
    viewer = created.json()
    assert viewer["role"] == "viewer"
    assert viewer["key"].startswith("bya_")
    assert viewer["revoked"] is False
    as_viewer = {"Authorization": f"Bearer {viewer['key']}"}

    async with httpx.AsyncClient(base_url=stack.url, headers=as_viewer, timeout=30) as client:
        assert (await client.get("/v1/batches")).status_code == 200
        denied = await client.post(
            "/v1/batches", json={"name": "no", "job_type": "demo.sleep", "items": [{}]}
        )
        assert denied.status_code == 403
        assert (await client.get("/v1/keys")).status_code == 403
        assert (
            await client.post("/v1/keys", json={"name": "x", "role": "admin"})
        ).status_code == 403

        listed = (await api.get("/v1/keys")).json()["items"]
        mine = [k for k in listed if k["id"] == viewer["id"]]
        assert mine == [{k: v for k, v in viewer.items() if k != "key"}]
        assert all("key" not in k for k in listed)

        assert (await api.delete(f"/v1/keys/{viewer['id']}")).status_code == 204
        revoked = await client.get("/v1/batches")
        assert revoked.status_code == 401
        assert revoked.headers["content-type"].startswith("application/problem+json")
        again = [k for k in (await api.get("/v1/keys")).json()["items"] if k["id"] == viewer["id"]]
        assert again[0]["revoked"] is True
        assert again[0]["revoked_at"]

    operator = (await api.post("/v1/keys", json={"name": "ops", "role": "operator"})).json()
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {operator['key']}"}, timeout=30
    ) as client:
        made = await client.post(
            "/v1/batches", json={"name": "ops", "job_type": "demo.sleep", "items": [{"seconds": 0}]}
        )
        assert made.status_code == 201, made.text
        assert (await client.delete(f"/v1/keys/{operator['id']}")).status_code == 403

    assert (await api.delete("/v1/keys/key_nothere")).status_code == 404
    assert (await api.post("/v1/keys", json={"name": "x", "role": "root"})).status_code == 422
    assert (await api.post("/v1/keys", json={"role": "viewer"})).status_code == 422


async def test_the_last_admin_key_of_a_tenant_is_kept(stack: Stack) -> None:
    first = await other_tenant_admin(stack)
    async with httpx.AsyncClient(base_url=stack.url, headers=auth(first), timeout=30) as api:
        (mine,) = (await api.get("/v1/keys")).json()["items"]
        refused = await api.delete(f"/v1/keys/{mine['id']}")
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "only admin key" in refused.json()["detail"]
        assert (await api.get("/v1/keys")).status_code == 200  # still works

        second = (await api.post("/v1/keys", json={"name": "deputy", "role": "admin"})).json()
        assert (await api.delete(f"/v1/keys/{mine['id']}")).status_code == 204
    async with httpx.AsyncClient(
        base_url=stack.url, headers=auth(second["key"]), timeout=30
    ) as api:
        # the deputy is now the only admin key left
        assert (await api.delete(f"/v1/keys/{second['id']}")).status_code == 409
        assert (await api.delete(f"/v1/keys/{mine['id']}")).status_code == 204  # repeat: harmless
        viewer = (await api.post("/v1/keys", json={"name": "v", "role": "viewer"})).json()
        assert (await api.delete(f"/v1/keys/{viewer['id']}")).status_code == 204
