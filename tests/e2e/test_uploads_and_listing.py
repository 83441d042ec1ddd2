"""Drafts filled by chunked uploads (ndjson and JSON, with Idempotency-Key) and submitted;
listing with filters and cursor pagination."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from stack_support import Stack
from tenancy import registered_key

pytestmark = pytest.mark.e2e
NDJSON = {"Content-Type": "application/x-ndjson"}


def ndjson(items: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(i) for i in items) + b"\n"


async def draft(api: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"name": "upload", "job_type": "demo.sleep", "draft": True, **extra}
    response = await api.post("/v1/batches", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_status(api: httpx.AsyncClient, batch_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/batches/{batch_id}")).json()
        if body["status"] == status:
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"{batch_id} stayed {body.get('status')}")


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["type"] == f"/problems/{kind}", body
    return body


async def test_draft_upload_in_chunks_then_submit(api: httpx.AsyncClient) -> None:
    created = await draft(api)
    batch_id = created["id"]
    assert created["status"] == "draft"
    assert created["progress"]["total"] == 0
    url = f"/v1/batches/{batch_id}"
    problem(await api.post(f"{url}/submit"), 422, "no-items")

    first = await api.post(f"{url}/items", content=ndjson([{"seconds": 0}] * 1100), headers=NDJSON)
    assert first.status_code == 202, first.text
    assert first.json() == {"batch_id": batch_id, "added": 1100, "total": 1100}
    assert (await api.get(url)).json()["status"] == "uploading"

    key = {"Idempotency-Key": f"chunk-{uuid.uuid4().hex}"}
    second = await api.post(f"{url}/items", json={"items": [{"seconds": 0}] * 100}, headers=key)
    assert second.status_code == 202, second.text
    assert second.json()["total"] == 1200
    again = await api.post(f"{url}/items", json={"items": [{"seconds": 0}] * 100}, headers=key)
    assert again.status_code == 202, again.text
    assert again.json() == second.json()
    reused = await api.post(f"{url}/items", json={"items": [{"seconds": 1}]}, headers=key)
    problem(reused, 409, "idempotency-key-reused")

    bad_line = b'{"seconds": 0}\n{nope\n'
    body = problem(
        await api.post(f"{url}/items", content=bad_line, headers=NDJSON), 400, "malformed-json"
    )
    assert body["line"] == 2
    problem(await api.post(f"{url}/items", content=b"[1]\n", headers=NDJSON), 422, "invalid-items")
    problem(
        await api.post(f"{url}/items", json={"items": [{"seconds": "soon"}]}),
        422,
        "invalid-items",
    )
    problem(await api.post(f"{url}/items", json={"items": [{}], "more": 1}), 422, "invalid-request")
    too_many = ndjson([{"seconds": 0}] * 10_001)
    problem(await api.post(f"{url}/items", content=too_many, headers=NDJSON), 422, "too-many-items")
    problem(
        await api.post(f"{url}/items", content=b"x", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported-media-type",
    )
    assert (await api.get(url)).json()["progress"]["total"] == 1200

    submitted = await api.post(f"{url}/submit")
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["status"] == "queued"
    assert submitted.json()["progress"]["total"] == 1200
    problem(await api.post(f"{url}/submit"), 409, "conflict")
    problem(await api.post(f"{url}/items", json={"items": [{}]}), 409, "conflict")
    done = await wait_status(api, batch_id, "completed")
    assert done["progress"]["completed"] == 1200


async def test_start_submits_a_draft_and_cancel_ends_one(api: httpx.AsyncClient) -> None:
    started = await draft(api, items=[{"seconds": 0}] * 3)
    assert started["status"] == "draft"
    response = await api.post(f"/v1/batches/{started['id']}/actions/start")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "draft"
    await wait_status(api, started["id"], "completed")

    dropped = await draft(api)
    response = await api.post(f"/v1/batches/{dropped['id']}/actions/cancel")
    assert response.status_code == 202, response.text
    assert (await api.get(f"/v1/batches/{dropped['id']}")).json()["status"] == "cancelled"
    changed = await api.patch(f"/v1/batches/{dropped['id']}", json={"config": {"timeout_s": 5}})
    problem(changed, 409, "conflict")
    assert (await api.delete(f"/v1/batches/{dropped['id']}")).status_code == 204


async def test_listing_filters_and_pages(api: httpx.AsyncClient) -> None:
    marker = uuid.uuid4().hex[:10]
    before = datetime.now(UTC) - timedelta(seconds=1)
    ids = []
    for n in range(5):
        created = await draft(
            api,
            name=f"list {marker} number {n}",
            tags=[marker, f"{marker}-{n % 2}"],
            priority="high" if n == 4 else "low",
        )
        ids.append(created["id"])
    newest_first = list(reversed(ids))

    async def listed(**params: Any) -> list[str]:
        response = await api.get("/v1/batches", params={"tag": marker, **params})
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["items"]]

    assert await listed() == newest_first
    assert await listed(tag=f"{marker}-1") == [ids[3], ids[1]]
    assert await listed(q=f"{marker.upper()} NUMBER 2") == [ids[2]]
    assert await listed(priority="high") == [ids[4]]
    assert await listed(priority="2") == []
    assert await listed(status="draft") == newest_first
    assert await listed(status="running,completed") == []
    assert await listed(job_type="demo.sleep", owner="admin") == newest_first
    assert await listed(owner="somebody-else") == []
    assert await listed(created_after=before.isoformat()) == newest_first
    assert await listed(created_before=before.isoformat()) == []

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"tag": marker, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/v1/batches", params=params)).json()
        seen += [b["id"] for b in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    assert pages == 3

    problem(await api.get("/v1/batches", params={"limit": 501}), 422, "invalid-request")
    problem(await api.get("/v1/batches", params={"cursor": "garbage!"}), 400, "invalid-cursor")
    problem(await api.get("/v1/batches", params={"status": "sleeping"}), 422, "invalid-request")
    problem(await api.get("/v1/batches", params={"priority": "urgent"}), 422, "invalid-request")


async def test_a_status_filter_across_phases_views_and_archive_pages_newest_first(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    """A filter of statuses kept in different places (a draft's phase in the registry, a
    submitted batch's status in its view, an archive), read a page of one at a time: every
    batch once, newest first; a private batch only for whom may see it."""
    marker = uuid.uuid4().hex[:10]

    async def submitted(name: str, **extra: Any) -> str:
        body = {"name": name, "job_type": "demo.sleep", "items": [{}], "tags": [marker], **extra}
        response = await api.post("/v1/batches", json=body)
        assert response.status_code == 201, response.text
        batch_id: str = response.json()["id"]
        await wait_status(api, batch_id, "completed")
        return batch_id

    first_draft = (await draft(api, name="d1", tags=[marker]))["id"]
    first_done = await submitted("c1")
    second_draft = (await draft(api, name="d2", tags=[marker]))["id"]
    shelved = await submitted("a1")
    archived = await api.post(f"/v1/batches/{shelved}/actions/archive")
    assert archived.status_code == 202, archived.text
    await wait_status(api, shelved, "archived")
    private = await submitted("p1", visibility="private")
    newest_first = [private, second_draft, first_done, first_draft]

    async def pages(client: httpx.AsyncClient, status: str) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            params = {"tag": marker, "status": status, "limit": 1}
            if cursor:
                params["cursor"] = cursor
            response = await client.get("/v1/batches", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [b["id"] for b in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert await pages(api, "draft,completed") == newest_first
    assert await pages(api, "completed,archived") == [private, shelved, first_done]
    assert await pages(api, "running,failed") == []
    key = await registered_key(stack, tenant="default", user="olga", role="operator")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as olga:
        # the admin's private batch is not hers to see; the rest of the tenant's are
        assert await pages(olga, "draft,completed") == newest_first[1:]
