"""Draft editing over HTTP on the real stack: a draft's items are listed with ids and pages,
removed one by one, by ids or by a filter; after submission every edit is a 409 naming the
status; the submitted batch runs exactly the remaining items, dense and in upload order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

TERMINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def item(label: str) -> dict[str, Any]:
    # demo.sleep forbids unknown fields: `error_class` (used only on failure) labels an item.
    return {"seconds": 0, "error_class": label}


async def draft(api: httpx.AsyncClient, items: list[dict[str, Any]]) -> str:
    body = {"name": "editing", "job_type": "demo.sleep", "draft": True, "items": items}
    response = await api.post("/v1/batches", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "draft"
    return str(response.json()["id"])


async def all_items(api: httpx.AsyncClient, batch_id: str, limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await api.get(f"/v1/batches/{batch_id}/items", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def labels(items: list[dict[str, Any]]) -> list[str]:
    return [i["item"]["error_class"] for i in items]


async def test_a_draft_is_edited_then_runs_exactly_the_remaining_items(
    api: httpx.AsyncClient,
) -> None:
    batch_id = await draft(api, [item(f"a{i}") for i in range(12)])
    upload = await api.post(
        f"/v1/batches/{batch_id}/items", json={"items": [item(f"b{i}") for i in range(6)]}
    )
    assert upload.status_code == 202, upload.text
    listed = await all_items(api, batch_id, limit=5)
    assert labels(listed) == [f"a{i}" for i in range(12)] + [f"b{i}" for i in range(6)]
    assert len({i["id"] for i in listed}) == 18
    assert all(i["index"] is None for i in listed)
    ids = {i["item"]["error_class"]: i["id"] for i in listed}

    one = await api.delete(f"/v1/batches/{batch_id}/items/{ids['a3']}")
    assert one.status_code == 200, one.text
    assert one.json() == {"batch_id": batch_id, "removed": 1, "total": 17}
    again = await api.delete(f"/v1/batches/{batch_id}/items/{ids['a3']}")
    assert again.status_code == 404, again.text
    many = await api.post(
        f"/v1/batches/{batch_id}/items/delete", json={"ids": [ids["a0"], ids["b5"], ids["a3"]]}
    )
    assert many.json() == {"batch_id": batch_id, "removed": 2, "total": 15}, many.text
    matched = await api.post(
        f"/v1/batches/{batch_id}/items/delete", json={"match": {"error_class": "b2"}}
    )
    assert matched.json()["removed"] == 1, matched.text
    unknown = await api.post(
        f"/v1/batches/{batch_id}/items/delete", json={"ids": [ids["a1"], "0-999", "junk"]}
    )
    assert unknown.status_code == 422, unknown.text
    assert "0-999" in unknown.json()["detail"]
    both = await api.post(
        f"/v1/batches/{batch_id}/items/delete", json={"ids": [ids["a1"]], "match": {"x": 1}}
    )
    assert both.status_code == 422, both.text

    remaining = ["a1", "a2", *[f"a{i}" for i in range(4, 12)], "b0", "b1", "b3", "b4"]
    assert labels(await all_items(api, batch_id, limit=4)) == remaining
    view = (await api.get(f"/v1/batches/{batch_id}")).json()
    assert (view["status"], view["progress"]["total"]) == ("uploading", 14)

    submitted = await api.post(f"/v1/batches/{batch_id}/submit")
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["progress"]["total"] == 14
    for attempt in (
        api.delete(f"/v1/batches/{batch_id}/items/{ids['a1']}"),
        api.post(f"/v1/batches/{batch_id}/items/delete", json={"ids": [ids["a1"]]}),
        api.post(f"/v1/batches/{batch_id}/items/delete", json={"match": {"seconds": 0}}),
        api.post(f"/v1/batches/{batch_id}/items", json={"items": [item("late")]}),
    ):
        response = await attempt
        assert response.status_code == 409, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["batch_status"] not in ("draft", "uploading")
        assert problem["batch_status"] in problem["detail"]

    deadline = time.monotonic() + 60
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/batches/{batch_id}")).json()
        if body["status"] in TERMINAL:
            break
        await asyncio.sleep(0.3)
    assert body["status"] == "completed", body
    assert (body["progress"]["total"], body["progress"]["completed"]) == (14, 14)
    jobs = (await api.get(f"/v1/batches/{batch_id}/jobs", params={"limit": 100})).json()["items"]
    assert [j["index"] for j in jobs] == list(range(14))
    assert [j["item"]["error_class"] for j in jobs] == remaining
    # The listing now shows the job index of every item, dense and in order.
    after = await all_items(api, batch_id, limit=100)
    assert [(i["index"], i["item"]["error_class"]) for i in after] == list(enumerate(remaining))


async def test_a_draft_emptied_by_a_filter_cannot_be_submitted(api: httpx.AsyncClient) -> None:
    batch_id = await draft(api, [item("x"), item("x"), {"seconds": 0.01}])
    response = await api.post(
        f"/v1/batches/{batch_id}/items/delete", json={"match": {"error_class": "x"}}
    )
    assert response.json()["removed"] == 2, response.text
    response = await api.post(
        f"/v1/batches/{batch_id}/items/delete", json={"match": {"seconds": 0.01}}
    )
    assert response.json() == {"batch_id": batch_id, "removed": 1, "total": 0}
    response = await api.post(f"/v1/batches/{batch_id}/submit")
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/no-items"
    # Items added after the removals run alone.
    response = await api.post(f"/v1/batches/{batch_id}/items", json={"items": [item("new")]})
    assert response.json()["total"] == 1, response.text
    assert labels(await all_items(api, batch_id, limit=10)) == ["new"]


async def test_a_submitted_batch_is_never_edited(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/batches",
        json={"name": "fixed", "job_type": "demo.sleep", "items": [{"seconds": 0}] * 3},
    )
    batch_id = response.json()["id"]
    listed = await all_items(api, batch_id, limit=10)
    assert [i["index"] for i in listed] == [0, 1, 2]
    response = await api.delete(f"/v1/batches/{batch_id}/items/{listed[0]['id']}")
    assert response.status_code == 409, response.text
    assert response.json()["type"] == "/problems/conflict"
    response = await api.get(f"/v1/batches/{batch_id}/items", params={"cursor": "nonsense"})
    assert response.status_code == 400, response.text
