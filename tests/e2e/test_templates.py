"""Batch templates over HTTP: create, list by category, share, change, instantiate into a
running batch (with overrides and idempotency), usage counts, and every refusal."""

from __future__ import annotations

import uuid

import httpx
import pytest
from jobs_support import wait_for_status
from stack_support import Stack
from tenancy import key_for

pytestmark = pytest.mark.e2e


async def test_a_template_is_created_shared_instantiated_and_counted(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    category = f"nightly-{uuid.uuid4().hex[:6]}"
    ann = await key_for(api, "ann", "operator")
    bob = await key_for(api, "bob", "operator")
    cat = await key_for(api, "cat", "operator")
    created = await api.post(
        "/v1/templates",
        headers=ann,
        json={
            "name": "library sync",
            "category": category,
            "shared_with": ["bob"],
            "spec": {
                "job_type": "demo.sleep",
                "priority": "high",
                "tags": ["sync"],
                "config": {"max_concurrent_jobs": 2},
                "items": [{"seconds": 0.05}] * 4,
            },
        },
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert created.headers["location"] == f"/v1/templates/{template['id']}"
    assert (template["owner"], template["visibility"], template["usage_count"]) == (
        "ann",
        "private",
        0,
    )

    # Seen by its owner, the user it is shared with and admins; a 404 for anyone else.
    for who in (ann, bob, stack.headers):
        assert (await api.get(f"/v1/templates/{template['id']}", headers=who)).status_code == 200
    assert (await api.get(f"/v1/templates/{template['id']}", headers=cat)).status_code == 404
    listed = (await api.get("/v1/templates", params={"category": category}, headers=cat)).json()
    assert listed["items"] == []
    categories = (await api.get("/v1/templates/categories", headers=bob)).json()
    assert {"category": category, "templates": 1} in categories

    # Bob may use it but not change it; Ann makes it visible to the whole tenant.
    assert (
        await api.patch(f"/v1/templates/{template['id']}", headers=bob, json={"name": "x"})
    ).status_code == 403
    shared = await api.patch(
        f"/v1/templates/{template['id']}", headers=ann, json={"visibility": "tenant"}
    )
    assert shared.status_code == 200, shared.text
    assert shared.json()["updated_at"]
    listed = (await api.get("/v1/templates", params={"category": category}, headers=cat)).json()
    assert [t["id"] for t in listed["items"]] == [template["id"]]

    # Instantiated as it is, and with overrides; a repeat with the same key is the same batch.
    plain = await api.post(f"/v1/templates/{template['id']}/instantiate", headers=cat, json={})
    assert plain.status_code == 201, plain.text
    batch = plain.json()
    assert (batch["name"], batch["priority"], batch["tags"]) == ("library sync", "high", ["sync"])
    assert batch["owner"] == "cat"
    assert batch["config"]["max_concurrent_jobs"] == 2
    assert batch["template_id"] == template["id"]  # where it came from
    override = {"name": "just two", "priority": "low", "items": [{"seconds": 0}] * 2}
    first = await api.post(
        f"/v1/templates/{template['id']}/instantiate",
        headers={**bob, "Idempotency-Key": f"tpl-{uuid.uuid4().hex}"},
        json=override,
    )
    assert first.status_code == 201, first.text
    again = await api.post(
        f"/v1/templates/{template['id']}/instantiate",
        headers={**bob, "Idempotency-Key": first.request.headers["Idempotency-Key"]},
        json=override,
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    done = await wait_for_status(api, batch["id"], {"completed"}, 60)
    assert done["progress"]["completed"] == 4
    small = await wait_for_status(api, first.json()["id"], {"completed"}, 60)
    assert (small["progress"]["total"], small["priority"]) == (2, "low")

    from_it = await api.get("/v1/batches", params={"template_id": template["id"]})
    assert {b["id"] for b in from_it.json()["items"]} == {batch["id"], first.json()["id"]}

    used = (await api.get(f"/v1/templates/{template['id']}", headers=ann)).json()
    assert used["usage_count"] == 2  # the idempotent repeat made no batch
    assert used["last_used_at"]

    assert (await api.delete(f"/v1/templates/{template['id']}", headers=bob)).status_code == 403
    assert (await api.delete(f"/v1/templates/{template['id']}", headers=ann)).status_code == 204
    assert (await api.get(f"/v1/templates/{template['id']}", headers=ann)).status_code == 404
    # The batches made from it stay.
    assert (await api.get(f"/v1/batches/{batch['id']}")).status_code == 200


async def test_templates_refuse_what_would_not_run(api: httpx.AsyncClient) -> None:
    unknown = await api.post(
        "/v1/templates", json={"name": "x", "spec": {"job_type": "no.such.type"}}
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    bad_items = await api.post(
        "/v1/templates",
        json={"name": "x", "spec": {"job_type": "demo.sleep", "items": [{"seconds": -1}]}},
    )
    assert bad_items.status_code == 422
    extra = await api.post(
        "/v1/templates", json={"name": "x", "spec": {"job_type": "demo.sleep"}, "colour": "red"}
    )
    assert extra.status_code == 422

    itemless = await api.post(
        "/v1/templates", json={"name": "bring your own", "spec": {"job_type": "demo.sleep"}}
    )
    assert itemless.status_code == 201, itemless.text
    template_id = itemless.json()["id"]
    needs = await api.post(f"/v1/templates/{template_id}/instantiate", json={})
    assert needs.status_code == 422
    assert needs.json()["type"] == "/problems/items-required"
    bad_config = await api.post(
        f"/v1/templates/{template_id}/instantiate",
        json={"items": [{}], "config": {"max_concurrent_jobs": -3}},
    )
    assert bad_config.status_code == 422
    viewer = await key_for(api, "vera", "viewer")
    denied = await api.post(
        f"/v1/templates/{template_id}/instantiate", headers=viewer, json={"items": [{}]}
    )
    assert denied.status_code in (403, 404)  # a viewer may not create batches
    assert (await api.get("/v1/templates/t_nothere")).status_code == 404


async def test_a_template_is_made_from_a_batch(api: httpx.AsyncClient) -> None:
    batch = await api.post(
        "/v1/batches",
        json={"name": "origin", "job_type": "demo.sleep", "items": [{"seconds": 0}] * 3},
    )
    assert batch.status_code == 201, batch.text
    batch_id = batch.json()["id"]
    made = await api.post(
        "/v1/templates/from-batch",
        json={"batch_id": batch_id, "name": "from origin", "with_items": False},
    )
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"/v1/templates/{made.json()['id']}"
    assert made.json()["spec"]["items"] is None
    assert made.json()["spec"]["job_type"] == "demo.sleep"
    with_items = await api.post(
        "/v1/templates/from-batch", json={"batch_id": batch_id, "name": "from origin, items"}
    )
    assert with_items.json()["spec"]["items"] == [{"seconds": 0}] * 3
    missing = await api.post(
        "/v1/templates/from-batch", json={"batch_id": "b_missing", "name": "nothing"}
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
