"""The template library over HTTP and `templates.consolidate` on the real stack: CRUD and bulk
import, a consolidation with planted duplicates and conflicts reporting exact counts, backups
per strategy, an interactive conflict decided by a person, and a consolidation planned into
more jobs than a batch takes at creation (10,000)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from jobs_support import import_library, metric_totals, store, wait_for_status
from library_data import make_library
from readmodels import settled_job_views
from stack_support import Stack
from tenancy import auth, registered_key

from servicekit.backups import batch_range

pytestmark = pytest.mark.e2e


async def test_templates_crud_and_errors(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/library/templates",
        json={"name": "Welcome", "category": "mail", "body": "Hi {{name}}", "variables": ["name"]},
    )
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert created.headers["location"] == f"/v1/library/templates/{tid}"
    patched = await api.patch(f"/v1/library/templates/{tid}", json={"tags": ["x"]})
    assert patched.json()["tags"] == ["x"]
    assert patched.json()["version"] == 2
    assert (await api.get(f"/v1/library/templates/{tid}")).json()["body"] == "Hi {{name}}"
    listed = (await api.get("/v1/library/templates", params={"tag": "x"})).json()
    assert tid in [t["id"] for t in listed["items"]]
    bad = await api.post("/v1/library/templates", json={"name": "x", "body": "y", "colour": 1})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    too_many = await api.post(
        "/v1/library/templates/import", json={"templates": [{"name": "n", "body": "b"}] * 10_001}
    )
    assert too_many.status_code == 422
    assert (await api.delete(f"/v1/library/templates/{tid}")).status_code == 204
    assert (await api.get(f"/v1/library/templates/{tid}")).status_code == 404
    unknown = await api.post("/v1/library/consolidations", json={"template_ids": ["t_nope"]})
    assert unknown.status_code == 422
    assert "t_nope" in unknown.json()["detail"]


async def test_a_template_written_outside_the_api_is_shown_with_its_defects_and_never_consolidated(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    tenant = f"lib-{random.randrange(16**8):08x}"  # a library of its own: whole-library scopes
    headers = auth(await registered_key(stack, tenant=tenant, user="ida", role="admin"))
    made = await api.post(
        "/v1/library/templates", headers=headers, json={"name": "Welcome", "body": "Hi {{n}}"}
    )
    assert made.status_code == 201, made.text
    planted = {
        "_id": "t_planted0000001",
        "tenant": tenant,
        "name": "Imported",
        "content": "Hi",  # not `body`
        "tags": 7,  # not a list
    }
    async with store(stack.mongodb_url, stack.database) as db:
        await db["library_templates"].insert_one(planted)  # a bulk load, not the API

    listed = await api.get("/v1/library/templates", headers=headers, params={"q": "import"})
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["items"]
    assert (shown["id"], shown["name"], shown["body"]) == (planted["_id"], "Imported", "")
    assert shown["defects"] == [
        "no body",
        "tags is not a list of text",
        "no created_at",
        "no updated_at",
    ]
    by_tag = await api.get("/v1/library/templates", headers=headers, params={"tag": "legacy"})
    assert by_tag.status_code == 200, by_tag.text
    assert by_tag.json()["items"] == []
    one = await api.get(f"/v1/library/templates/{planted['_id']}", headers=headers)
    assert one.status_code == 200
    assert one.json()["defects"] == shown["defects"]

    tagged = await api.post(
        "/v1/library/consolidations/plan", headers=headers, json={"filter": {"tags": ["mail"]}}
    )
    assert tagged.status_code == 200, tagged.text  # tags that are not a list match nothing
    assert tagged.json()["templates"] == 0
    for path in ("/v1/library/consolidations/plan", "/v1/library/consolidations"):
        refused = await api.post(path, headers=headers, json={})
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert planted["_id"] in problem["detail"]
        assert "no body" in problem["detail"]
        assert problem["invalid_templates"] == [{"id": planted["_id"], "defects": shown["defects"]}]
    batches = await api.get("/v1/batches", headers=headers)
    assert batches.json()["items"] == []  # nothing was started

    # a batch made without the planner: its job fails and writes nothing
    direct = await api.post(
        "/v1/batches",
        headers=headers,
        json={
            "name": "by hand",
            "job_type": "templates.consolidate",
            "items": [{"template_ids": [made.json()["id"], planted["_id"]]}],
        },
    )
    assert direct.status_code == 201, direct.text
    batch_id = direct.json()["id"]
    for _ in range(100):
        jobs = (await api.get(f"/v1/batches/{batch_id}/jobs", headers=headers)).json()["items"]
        if jobs and jobs[0]["status"] == "failed":
            break
        await asyncio.sleep(0.3)
    assert jobs[0]["status"] == "failed", jobs
    assert jobs[0]["error"]["class"] == "InvalidTemplate"
    assert planted["_id"] in jobs[0]["error"]["message"]
    async with store(stack.mongodb_url, stack.database) as db:
        assert await db["library_templates"].find_one({"_id": planted["_id"]}) == planted

    mended = await api.patch(
        f"/v1/library/templates/{planted['_id']}",
        headers=headers,
        json={"body": "Hello", "tags": ["legacy"]},
    )
    assert mended.status_code == 200, mended.text
    assert (mended.json()["defects"], mended.json()["version"]) == ([], 2)
    plan = await api.post("/v1/library/consolidations/plan", headers=headers, json={})
    assert plan.status_code == 200, plan.text
    assert plan.json()["templates"] == 2


@pytest.mark.parametrize("strategy", ["automatic", "none", "manual"])
async def test_consolidation_counts_and_backups_per_strategy(
    api: httpx.AsyncClient, stack: Stack, strategy: str
) -> None:
    templates, expected = make_library(random.Random(11), 300, exact=30, near=10, conflicts=10)
    ids = await import_library(api, templates)
    body = {"template_ids": ids, "backup_strategy": strategy, "templates_per_job": 40}
    planned = (await api.post("/v1/library/consolidations/plan", json=body)).json()
    assert (planned["templates"], planned["duplicates"], planned["conflicts"]) == (300, 40, 10)
    response = await api.post("/v1/library/consolidations", json=body)
    assert response.status_code == 201, response.text
    batch_id = response.json()["batch_id"]
    await wait_for_status(api, batch_id, {"completed"}, 120)
    totals = await metric_totals(stack, batch_id, planned["jobs"])
    assert {k: totals[k] for k in expected} == expected
    report = (await api.get(f"/v1/batches/{batch_id}/report")).json()
    assert report["metrics"] == totals
    assert report["totals"] == {"total": planned["jobs"], "completed": planned["jobs"]}
    async with store(stack.mongodb_url, stack.database) as db:
        backups = [d async for d in db["backups"].find(batch_range(batch_id))]
        manual = await db["backups"].find_one({"_id": response.json()["manual_backup_id"]})
        after = {d["_id"]: d async for d in db["library_templates"].find({"_id": {"$in": ids}})}
    assert len(backups) == (planned["jobs"] if strategy == "automatic" else 0)
    assert all(b["completed_at"] is not None for b in backups)
    assert (manual is not None) == (strategy == "manual")
    statuses = [d["status"] for d in after.values()]
    assert statuses.count("merged") == 40
    assert sum(1 for d in after.values() if d["name"].endswith(" (2)")) == 10
    merged = [d for d in after.values() if d["status"] == "merged"]
    assert all(after[d["canonical_id"]]["status"] == "active" for d in merged)


async def test_an_interactive_conflict_waits_for_a_decision(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    """A job waiting for a decision is no error of the batch: with `stop_on_error` and
    `rollback_on_failure`, the other job still runs, and nothing is rolled back (the batch
    stopped at the parked job, failed, and undid the other's merge)."""
    first = {"name": "Refund", "category": "billing", "body": "We refund you within 14 days."}
    second = {"name": "refund", "category": "billing", "body": "Refunds take a month, sorry."}
    hello = {"name": "Hello", "category": "mail", "body": "Hello {{name}}, welcome aboard."}
    hello_copy = {"name": "Hello 2", "category": "mail", "body": "hello {{who}}, welcome aboard."}
    ids = await import_library(api, [first, second, hello, hello_copy])
    body = {
        "template_ids": ids,
        "conflict_resolution": "interactive",
        "templates_per_job": 2,
        "max_concurrent_jobs": 1,
        "stop_on_error": True,
        "rollback_on_failure": True,
    }
    response = await api.post("/v1/library/consolidations", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["plan"]["jobs"] == 2
    batch_id = response.json()["batch_id"]
    ended = await wait_for_status(api, batch_id, {"completed_with_errors", "failed"}, 60)
    assert ended["status"] == "completed_with_errors"  # one job parked, the other merged
    assert (ended["progress"]["completed"], ended["progress"]["failed"]) == (1, 1)
    assert ended["progress"]["awaiting_decision"] == 1  # of the failed: no error
    assert ended.get("rollback") is None
    views = await settled_job_views(  # a view shows `running` before its failure lands
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == 2 and {v["status"] for v in vs} == {"failed", "completed"},
    )
    views = [v for v in views if v["status"] == "failed"]
    assert views[0]["error_class"] == "AwaitingDecision"
    job = (await api.get(f"/v1/batches/{batch_id}/jobs/{views[0]['job_id']}")).json()
    assert job["error"]["severity"] == "low"  # a person decides: nothing went wrong
    assert (job["status"], job["awaiting_decision"]) == ("failed", True)
    parked = await api.get(f"/v1/batches/{batch_id}/jobs", params={"status": "awaiting_decision"})
    assert [j["id"] for j in parked.json()["items"]] == [job["id"]]
    every = (await api.get(f"/v1/batches/{batch_id}/jobs")).json()["items"]
    assert [j["awaiting_decision"] for j in every if j["id"] != job["id"]] == [False]
    conflict_id = views[0]["error_message"].rsplit(": ", 1)[1]
    conflict = (await api.get(f"/v1/library/conflicts/{conflict_id}")).json()
    assert conflict["status"] == "awaiting_decision"
    listed = await api.get("/v1/library/conflicts", params={"batch_id": batch_id})
    assert [c["id"] for c in listed.json()] == [conflict_id]
    waiting = {"batch_id": batch_id, "status": "awaiting_decision"}
    assert len((await api.get("/v1/library/conflicts", params=waiting)).json()) == 1
    unknown = await api.get("/v1/library/conflicts", params={"batch_id": "b_none"})
    assert unknown.status_code == 404
    assert sorted(conflict["template_ids"]) == sorted(ids[:2])
    wrong = await api.post(
        f"/v1/library/conflicts/{conflict_id}/decision", json={"keep": "t_other"}
    )
    assert wrong.status_code == 422
    decided = await api.post(f"/v1/library/conflicts/{conflict_id}/decision", json={"keep": ids[1]})
    assert decided.status_code == 202, decided.text
    await wait_for_status(api, batch_id, {"completed"}, 60)
    waiting_now = await api.get("/v1/library/conflicts", params=waiting)
    assert waiting_now.json() == []
    for _ in range(20):  # the job view follows the batch's own
        decided_job = (await api.get(f"/v1/batches/{batch_id}/jobs/{job['id']}")).json()
        if decided_job["status"] == "completed":
            break
        await asyncio.sleep(0.25)
    assert (decided_job["status"], decided_job["awaiting_decision"]) == ("completed", False)
    for _ in range(20):
        kept = (await api.get(f"/v1/library/templates/{ids[1]}")).json()
        other = (await api.get(f"/v1/library/templates/{ids[0]}")).json()
        if other["status"] == "archived":
            break
        await asyncio.sleep(0.5)
    assert (kept["status"], other["status"]) == ("active", "archived")


async def test_conflicts_left_alone_are_a_warning_of_the_completed_job(
    api: httpx.AsyncClient,
) -> None:
    first = {"name": "Invoice", "category": "billing", "body": "Your invoice is attached."}
    second = {"name": "invoice", "category": "billing", "body": "Pay within 30 days, please."}
    ids = await import_library(api, [first, second])
    response = await api.post(
        "/v1/library/consolidations", json={"template_ids": ids, "conflict_resolution": "skip"}
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["batch_id"]
    await wait_for_status(api, batch_id, {"completed"}, 60)
    job: dict[str, Any] = {}
    for _ in range(40):  # the job view converges a moment after the batch view
        job = (await api.get(f"/v1/batches/{batch_id}/jobs/{batch_id}.0")).json()
        if job["status"] == "completed":
            break
        await asyncio.sleep(0.25)
    assert job["output"]["conflicts_skipped"] == 1
    assert job["warnings"] == ["1 conflict(s) left as they were (conflict_resolution: skip)"]


async def test_a_consolidation_of_more_jobs_than_a_batch_takes_at_once_is_created_whole(
    api: httpx.AsyncClient,
) -> None:
    """10,001 jobs: the batch was refused by its own creation limit and the API answered 500.
    Now it is created whole in one step, as any batch is (stored, then published), so a
    request cut short leaves no half-filled draft behind."""
    count = 10_001
    templates = [
        {"name": f"big {i}", "category": "bulk", "body": f"notice w{i}a w{i}b w{i}c {{{{n}}}}"}
        for i in range(count)
    ]
    ids = await import_library(api, templates[:10_000])
    ids += await import_library(api, templates[10_000:])
    response = await api.post(
        "/v1/library/consolidations",
        json={"name": "whole library", "template_ids": ids, "templates_per_job": 1},
    )
    assert response.status_code == 201, response.text
    assert response.json()["plan"]["jobs"] == count
    batch_id = response.json()["batch_id"]
    batch = (await api.get(f"/v1/batches/{batch_id}")).json()
    assert batch["progress"]["total"] == count
    assert batch["status"] in ("queued", "running", "completed")
    cancelled = await api.post(f"/v1/batches/{batch_id}/actions/cancel", json={})
    assert cancelled.status_code in (202, 409), cancelled.text


async def test_a_manual_backup_is_kept_only_for_the_batch_it_was_taken_for(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    """The manual backup is written before the batch exists: a request that makes no batch
    (refused, or a repeat of an earlier one by its Idempotency-Key) leaves none behind. A
    repeat is answered with the first request's batch even once that batch merged the
    templates it names."""
    templates, _ = make_library(random.Random(5), 20, exact=2, near=0, conflicts=0)
    ids = await import_library(api, templates)
    body = {"template_ids": ids, "backup_strategy": "manual", "name": "manual once"}
    key = {"Idempotency-Key": f"manual-{ids[0]}"}

    async def manual_backups() -> list[dict[str, Any]]:
        async with store(stack.mongodb_url, stack.database) as db:
            return [d async for d in db["backups"].find({"_id": {"$regex": "^mb_"}})]

    before = {d["_id"] for d in await manual_backups()}
    first = await api.post("/v1/library/consolidations", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["plan"]["duplicates"] == 2
    batch_id, backup_id = first.json()["batch_id"], first.json()["manual_backup_id"]
    await wait_for_status(api, batch_id, {"completed"}, 60)  # two of the ids now merged

    again = await api.post("/v1/library/consolidations", json=body, headers=key)
    assert again.status_code == 200, again.text  # as a repeated POST /v1/batches
    assert (again.json()["batch_id"], again.json()["manual_backup_id"]) == (batch_id, backup_id)
    assert again.json()["plan"] is None  # the plan was the first request's
    reused = await api.post(
        "/v1/library/consolidations", json={**body, "name": "another"}, headers=key
    )
    assert reused.status_code == 409, reused.text  # the key names another request
    unknown = await api.post("/v1/library/consolidations", json=body)  # no key: a new one
    assert unknown.status_code == 422, unknown.text  # ... of templates merged since
    new = [d for d in await manual_backups() if d["_id"] not in before]
    assert [(d["_id"], d["batch_id"]) for d in new] == [(backup_id, batch_id)]


async def test_repeats_racing_the_first_consolidation_are_answered_alike(
    api: httpx.AsyncClient,
) -> None:
    """Repeats sent while the first request still plans (found when the batch is made, not
    before) are answered as any repeat: 200, the same batch, no plan of their own."""
    templates, _ = make_library(random.Random(8), 60, exact=6, near=0, conflicts=0)
    ids = await import_library(api, templates)
    body = {"template_ids": ids, "backup_strategy": "none", "name": "raced"}
    key = {"Idempotency-Key": f"raced-{ids[0]}"}
    answers = await asyncio.gather(
        *(api.post("/v1/library/consolidations", json=body, headers=key) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], answers
    (first,) = [a.json() for a in answers if a.status_code == 201]
    assert first["plan"]["duplicates"] == 6
    repeats = [a.json() for a in answers if a.status_code == 200]
    assert {r["batch_id"] for r in repeats} == {first["batch_id"]}
    assert [r["plan"] for r in repeats] == [None, None, None]
