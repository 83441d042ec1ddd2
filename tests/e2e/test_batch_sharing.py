"""Who sees a batch: a private batch is seen by its owner, the users it is shared with and the
tenant's admins, and by nobody else in the tenant (not by id, not in listings, not on the
tenant's event stream); only its owner or an admin changes that; batches are visible to the
tenant by default."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from jobs_support import wait_for_status
from sse_support import sse_frames
from stack_support import Stack
from tenancy import key_for

pytestmark = pytest.mark.e2e


async def listed(api: httpx.AsyncClient, who: dict[str, str], name: str) -> list[str]:
    response = await api.get("/v1/batches", params={"q": name, "limit": 500}, headers=who)
    assert response.status_code == 200, response.text
    return [b["id"] for b in response.json()["items"]]


class Watcher:
    """The batch ids `who`'s tenant event stream shows, read in the background."""

    def __init__(self, stack: Stack, who: dict[str, str]) -> None:
        self.client = httpx.AsyncClient(base_url=stack.url, headers=who, timeout=None)
        self.shown: set[str] = set()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        connected = asyncio.Event()

        async def read() -> None:
            async with self.client.stream("GET", "/v1/events") as stream:
                assert stream.status_code == 200
                connected.set()
                async for _, body in sse_frames(stream):
                    if "batch_id" in body:
                        self.shown.add(body["batch_id"])

        self.task = asyncio.create_task(read())
        await asyncio.wait_for(connected.wait(), 10)
        await asyncio.sleep(0.5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.client.aclose()


async def test_a_private_batch_is_seen_only_by_its_owner_those_it_is_shared_with_and_admins(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    ann = await key_for(api, "ann", "operator")
    bob = await key_for(api, "bob", "operator")
    cy = await key_for(api, "cy", "viewer")
    spec: dict[str, Any] = {"job_type": "demo.sleep", "items": [{"seconds": 0.4}] * 6}
    async with Watcher(stack, bob) as bobs_stream, Watcher(stack, cy) as cys_stream:
        created = await api.post(
            "/v1/batches",
            json={**spec, "name": "ann private", "visibility": "private", "shared_with": ["cy"]},
            headers=ann,
        )
        assert created.status_code == 201, created.text
        private = created.json()
        opened_batch = await api.post("/v1/batches", json={**spec, "name": "ann open"}, headers=ann)
        public = opened_batch.json()
        await wait_for_status(api, public["id"], {"completed"}, 60)
        await wait_for_status(api, private["id"], {"completed"}, 60)
        await asyncio.sleep(1)
    assert (private["visibility"], private["shared_with"], private["owner"]) == (
        "private",
        ["cy"],
        "ann",
    )
    assert public["visibility"] == "tenant"
    # the tenant's event stream: bob sees only the open batch, cy both
    assert public["id"] in bobs_stream.shown
    assert private["id"] not in bobs_stream.shown
    assert {public["id"], private["id"]} <= cys_stream.shown

    # bob, in the same tenant, neither finds it nor sees it stream by
    assert (await api.get(f"/v1/batches/{private['id']}", headers=bob)).status_code == 404
    for tail in ("/jobs", "/report", "/export", "/analytics"):
        assert (await api.get(f"/v1/batches/{private['id']}{tail}", headers=bob)).status_code == 404
    paused = await api.post(f"/v1/batches/{private['id']}/actions/pause", headers=bob)
    assert paused.status_code == 404
    assert await listed(api, bob, "ann ") == [public["id"]]

    # cy (shared with) and the admin see it; cy may not change it
    for who in (cy, ann, stack.headers):
        assert (await api.get(f"/v1/batches/{private['id']}", headers=who)).status_code == 200
        assert private["id"] in await listed(api, who, "ann private")
    refused = await api.patch(
        f"/v1/batches/{private['id']}", json={"visibility": "tenant"}, headers=cy
    )
    assert refused.status_code == 403

    # an operator it is shared with sees it, but may not share it further
    await api.patch(
        f"/v1/batches/{private['id']}", json={"shared_with": ["cy", "bob"]}, headers=ann
    )
    assert (await api.get(f"/v1/batches/{private['id']}", headers=bob)).status_code == 200
    widen = await api.patch(
        f"/v1/batches/{private['id']}", json={"visibility": "tenant"}, headers=bob
    )
    assert widen.status_code == 403, widen.text
    assert widen.headers["content-type"].startswith("application/problem+json")

    # the owner opens it to the tenant
    opened = await api.patch(
        f"/v1/batches/{private['id']}",
        json={"visibility": "tenant", "shared_with": []},
        headers=ann,
    )
    assert opened.status_code == 200, opened.text
    assert opened.json()["visibility"] == "tenant"
    dan = await key_for(api, "dan", "viewer")
    assert (await api.get(f"/v1/batches/{private['id']}", headers=dan)).status_code == 200


async def test_sharing_is_validated(api: httpx.AsyncClient) -> None:
    for extra in ({"visibility": "everyone"}, {"shared_with": [""]}, {"shared_with": "cy"}):
        response = await api.post(
            "/v1/batches",
            json={"name": "bad sharing", "job_type": "demo.sleep", "items": [{}], **extra},
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
