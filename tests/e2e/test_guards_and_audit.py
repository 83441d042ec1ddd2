"""The API's guards and its audit log, over HTTP on the running stack: a body over the cap is a
413 (declared or streamed), a key over its rate limit gets 429 with `Retry-After` while other
keys go on, and every state-changing call is in the tenant's audit log, readable by admins
only and by no other tenant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from stack_support import Stack
from tenancy import other_tenant_admin

pytestmark = pytest.mark.e2e

CAP = 32 * 1024 * 1024  # the API's default body cap


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_body_over_the_cap_is_413_and_nothing_is_created(api: httpx.AsyncClient) -> None:
    before = (await api.get("/v1/batches", params={"q": "too big"})).json()["items"]
    declared = await api.post(
        "/v1/batches",
        content=b" " * (CAP + 1),
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413, declared.text
    assert declared.headers["content-type"].startswith("application/problem+json")
    assert declared.json()["max_bytes"] == CAP

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "too big", "job_type": "demo.sleep", "items": ['
        chunk = b'{"seconds": 0},' * 70_000
        for _ in range(CAP // len(chunk) + 2):
            yield chunk
        yield b'{"seconds": 0}]}'

    chunked = await api.post(
        "/v1/batches", content=streamed(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["type"] == "/problems/payload-too-large"
    after = (await api.get("/v1/batches", params={"q": "too big"})).json()["items"]
    assert after == before


async def test_a_key_over_its_rate_limit_gets_429_and_others_go_on(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    created = await api.post(
        "/v1/keys",
        json={"name": "slow poller", "role": "viewer", "rate_limit": {"per_s": 2, "burst": 3}},
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["rate_limit"] == {"per_s": 2.0, "burst": 3}
    async with httpx.AsyncClient(base_url=stack.url, headers=auth(key["key"]), timeout=30) as c:
        answers = [await c.get("/v1/batches?limit=1") for _ in range(6)]
        codes = [a.status_code for a in answers]
        assert codes[:3] == [200, 200, 200], codes
        assert 429 in codes[3:], codes
        limited = next(a for a in answers if a.status_code == 429)
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["type"] == "/problems/rate-limited"
        # The admin's key is not slowed by it.
        assert (await api.get("/v1/batches?limit=1")).status_code == 200
        # After waiting as told, the key works again.
        await asyncio.sleep(int(limited.headers["retry-after"]))
        assert (await c.get("/v1/batches?limit=1")).status_code == 200


async def test_state_changing_calls_are_in_the_audit_log(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    made = await api.post(
        "/v1/keys", json={"name": "auditor test operator", "role": "operator", "user": "otto"}
    )
    operator = made.json()
    async with httpx.AsyncClient(
        base_url=stack.url, headers=auth(operator["key"]), timeout=30
    ) as otto:
        created = await otto.post(
            "/v1/batches",
            json={"name": "audited", "job_type": "demo.sleep", "items": [{"seconds": 5}] * 3},
        )
        assert created.status_code == 201, created.text
        batch_id = created.json()["id"]
        assert (await otto.post(f"/v1/batches/{batch_id}/actions/cancel")).status_code == 202
        refused = await otto.delete(f"/v1/keys/{operator['id']}")  # operators may not
        assert refused.status_code == 403
        assert (await otto.get("/v1/audit")).status_code == 403

    page = await api.get("/v1/audit", params={"user": "otto", "limit": 10})
    assert page.status_code == 200, page.text
    entries = page.json()["items"]
    seen = [(e["method"], e["action"], e["resource"], e["status"], e["outcome"]) for e in entries]
    assert seen == [  # newest first
        ("DELETE", "keys.delete", operator["id"], 403, "refused"),
        ("POST", "batches.cancel", batch_id, 202, "ok"),
        ("POST", "batches.create", None, 201, "ok"),
    ]
    assert {e["key_id"] for e in entries} == {operator["id"]}
    assert all(e["role"] == "operator" for e in entries)
    # Reads are not audited, and the filter by resource finds the batch's calls.
    by_batch = (await api.get("/v1/audit", params={"resource": batch_id})).json()["items"]
    assert [e["action"] for e in by_batch] == ["batches.cancel"]
    # Pages: one entry at a time, continued by the cursor.
    first = (await api.get("/v1/audit", params={"user": "otto", "limit": 1})).json()
    second = (
        await api.get(
            "/v1/audit", params={"user": "otto", "limit": 1, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [e["id"] for e in entries[:2]]

    # Another tenant's admin sees none of it.
    foreign = await other_tenant_admin(stack)
    theirs = await api.get("/v1/audit", params={"user": "otto"}, headers=auth(foreign))
    assert theirs.status_code == 200
    assert theirs.json()["items"] == []
