"""Bulk operations over HTTP: cancel by ids with a result per batch (the ones the action does
not fit are reported, not fatal), archive and delete by filter, and the request's own
errors."""

from __future__ import annotations

import uuid

import httpx
import pytest
from jobs_support import wait_for_status
from stack_support import Stack

pytestmark = pytest.mark.e2e


async def create(api: httpx.AsyncClient, name: str, seconds: float, jobs: int) -> str:
    response = await api.post(
        "/v1/batches",
        json={
            "name": name,
            "job_type": "demo.sleep",
            "items": [{"seconds": seconds}] * jobs,
            "config": {"max_concurrent_jobs": 1},
        },
    )
    assert response.status_code == 201, response.text
    batch_id: str = response.json()["id"]
    return batch_id


async def test_cancel_many_by_ids_then_archive_and_delete_by_filter(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    tag = f"bulk-{uuid.uuid4().hex[:8]}"
    running = [await create(api, f"{tag} long {i}", 5, 20) for i in range(3)]
    done = await create(api, f"{tag} quick", 0, 1)
    await wait_for_status(api, done, {"completed"}, 60)

    cancel = await api.post(
        "/v1/batches/bulk",
        json={"action": "cancel", "ids": [*running, done, "b_nothere"]},
    )
    assert cancel.status_code == 200, cancel.text
    outcome = cancel.json()
    assert (outcome["matched"], outcome["succeeded"], outcome["failed"]) == (5, 3, 2)
    by_id = {r["id"]: r for r in outcome["results"]}
    assert all(by_id[b]["ok"] and by_id[b]["status"] == 202 for b in running)
    assert by_id[done]["status"] == 409
    assert by_id[done]["batch_status"] == "completed"
    assert "completed" in by_id[done]["detail"]
    assert by_id["b_nothere"]["status"] == 404
    for batch_id in running:
        await wait_for_status(api, batch_id, {"cancelled"}, 60)

    archive = await api.post(
        "/v1/batches/bulk",
        json={"action": "archive", "filter": {"q": tag, "status": ["cancelled", "completed"]}},
    )
    assert archive.status_code == 200, archive.text
    assert archive.json()["succeeded"] == 4
    listed = (await api.get("/v1/batches", params={"q": tag})).json()["items"]
    assert {b["status"] for b in listed} == {"archived"}

    delete = await api.post("/v1/batches/bulk", json={"action": "delete", "filter": {"q": tag}})
    assert delete.status_code == 200, delete.text
    assert [r["status"] for r in delete.json()["results"]] == [204] * 4
    assert (await api.get("/v1/batches", params={"q": tag})).json()["items"] == []
    assert (await api.get(f"/v1/batches/{done}")).status_code == 404


async def test_bulk_requests_that_are_wrong_in_themselves(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    both = await api.post(
        "/v1/batches/bulk", json={"action": "cancel", "ids": ["b_1"], "filter": {"q": "x"}}
    )
    assert both.status_code == 422
    neither = await api.post("/v1/batches/bulk", json={"action": "cancel"})
    assert neither.status_code == 422
    unknown = await api.post("/v1/batches/bulk", json={"action": "explode", "ids": ["b_1"]})
    assert unknown.status_code == 422
    bad_status = await api.post(
        "/v1/batches/bulk", json={"action": "archive", "filter": {"status": ["sleeping"]}}
    )
    assert bad_status.status_code == 422
    assert "sleeping" in bad_status.json()["detail"]

    viewer = (await api.post("/v1/keys", json={"name": "bulk viewer", "role": "viewer"})).json()
    denied = await api.post(
        "/v1/batches/bulk",
        json={"action": "cancel", "ids": ["b_1"]},
        headers={"Authorization": f"Bearer {viewer['key']}"},
    )
    assert denied.status_code == 403
