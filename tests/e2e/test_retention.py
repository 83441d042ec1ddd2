"""Retention on the running system, in a tenant of its own: a dry run changes nothing; a run
archives terminal batches (per-job records gone, report kept) and a later one deletes them;
batches that are not terminal (draft, queued, running, paused) are never touched; every run is
in the audit log; bad policies are refused; archived and deleted batches leave no backups, and
deleted ones no uploaded files; a batch deleted by hand leaves no document in any service.

Ages are fractions of a day (1e-6 days = 86 ms), so "older than the threshold" needs no
sleeping for days and no clock tricks: the run path is the real one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from jobs_support import (
    import_library,
    request_rollback,
    store,
    wait_for_rollback,
    wait_for_status,
)
from stack_support import Stack
from tenancy import registered_key

from servicekit.backups import batch_range
from servicekit.files import FileStore

pytestmark = pytest.mark.e2e
TINY = 1e-6  # days: 86 ms
TERMINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


@pytest.fixture
async def tenant_api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An admin of a tenant of its own: retention runs per tenant, so the other e2e tests'
    batches are out of reach."""
    key = await registered_key(
        stack, tenant=f"ret-{uuid.uuid4().hex[:8]}", user="rita", role="admin"
    )
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60) as client:
        yield client


async def create(api: httpx.AsyncClient, items: list[dict[str, Any]], **extra: Any) -> str:
    body = {"name": "retention", "job_type": "demo.sleep", "items": items, **extra}
    response = await api.post("/v1/batches", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def wait_until(check: Any, within_s: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + within_s
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.3)


async def mixed_batches(api: httpx.AsyncClient) -> dict[str, str]:
    """Two finished batches, and one each of running, paused, queued (waiting for the
    running one) and draft."""
    done = await create(api, [{"seconds": 0}] * 3)
    cancelled = await create(api, [{"seconds": 30}] * 3, config={"max_concurrent_jobs": 1})
    running = await create(api, [{"seconds": 30}] * 4, config={"max_concurrent_jobs": 1})
    paused = await create(api, [{"seconds": 30}] * 4, config={"max_concurrent_jobs": 1})
    queued = await create(
        api, [{"seconds": 0}], config={"depends_on": {"batches": [running], "on": "completed"}}
    )
    draft = await create(api, [{"seconds": 0}], draft=True)
    await wait_for_status(api, paused, {"running"}, 60)
    assert (await api.post(f"/v1/batches/{paused}/actions/pause")).status_code == 202
    assert (await api.post(f"/v1/batches/{cancelled}/actions/cancel")).status_code == 202
    await wait_for_status(api, done, {"completed"}, 60)
    await wait_for_status(api, cancelled, {"cancelled"}, 60)
    await wait_for_status(api, paused, {"paused"}, 60)
    await wait_for_status(api, running, {"running"}, 60)
    await wait_for_status(api, queued, {"queued"}, 60)
    await asyncio.sleep(0.2)  # older than TINY
    return {
        "completed": done,
        "cancelled": cancelled,
        "running": running,
        "paused": paused,
        "queued": queued,
        "draft": draft,
    }


async def set_policy(api: httpx.AsyncClient, **policy: Any) -> dict[str, Any]:
    response = await api.put("/v1/retention", json=policy)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def run(api: httpx.AsyncClient, dry_run: bool) -> dict[str, Any]:
    response = await api.post("/v1/retention/run", params={"wait_s": 25}, json={"dry_run": dry_run})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "completed", body
    assert body["dry_run"] is dry_run
    return body


async def reads(api: httpx.AsyncClient, stack: Stack, batches: dict[str, str]) -> dict[str, Any]:
    """What a user and the store show of the batches: the batch, its jobs, its report, and
    every document about it in the scheduler's, the reporter's and the API's collections."""
    seen: dict[str, Any] = {}
    for name, batch_id in batches.items():
        batch = (await api.get(f"/v1/batches/{batch_id}")).json()
        # progress moves for running batches; the rest must be identical
        seen[f"{name}.status"] = batch["status"]
        seen[f"{name}.archived"] = batch.get("archived_at")
        if name in ("completed", "cancelled", "draft"):
            jobs = await api.get(f"/v1/batches/{batch_id}/jobs")
            seen[f"{name}.jobs"] = (jobs.status_code, [j["status"] for j in jobs.json()["items"]])
            report = (await api.get(f"/v1/batches/{batch_id}/report")).json()
            report.pop("generated_at", None)
            seen[f"{name}.report"] = report
    async with store(stack.mongodb_url, stack.database) as db:
        for name, batch_id in batches.items():
            if name not in ("completed", "cancelled", "draft"):
                continue
            for collection in ("sched_batches", "batches", "batch_views"):
                doc = await db[collection].find_one({"_id": batch_id})
                seen[f"{name}.{collection}"] = doc
            for collection in ("sched_jobs", "sched_chunks", "job_views", "batch_uploads"):
                seen[f"{name}.{collection}"] = await db[collection].count_documents(
                    {"batch_id": batch_id}
                )
    return seen


async def test_a_dry_run_changes_nothing(tenant_api: httpx.AsyncClient, stack: Stack) -> None:
    api = tenant_api
    batches = await mixed_batches(api)
    await set_policy(api, archive_after_days=TINY, delete_archived_after_days=TINY)
    before = await reads(api, stack, batches)
    assert before["completed.sched_jobs"] > 0
    assert before["completed.job_views"] > 0
    assert before["completed.batch_uploads"] > 0

    dry = await run(api, dry_run=True)

    assert set(dry["archived_ids"]) == {batches["completed"], batches["cancelled"]}
    assert dry["archived"] == 2
    assert dry["deleted"] == 0
    assert dry["skipped_non_terminal"] >= 3  # running, paused, queued (and a known draft)
    await asyncio.sleep(2)  # give any wrongly emitted change time to land
    assert await reads(api, stack, batches) == before
    for name in ("running", "paused", "queued", "draft"):
        await api.post(f"/v1/batches/{batches[name]}/actions/cancel")


async def test_a_run_archives_then_deletes_terminal_batches_only(
    tenant_api: httpx.AsyncClient, stack: Stack
) -> None:
    api = tenant_api
    batches = await mixed_batches(api)
    report_before = (await api.get(f"/v1/batches/{batches['completed']}/report")).json()
    await set_policy(api, archive_after_days=TINY, delete_archived_after_days=1.0)

    archived_run = await run(api, dry_run=False)

    finished = {batches["completed"], batches["cancelled"]}
    assert set(archived_run["archived_ids"]) == finished
    for name in ("completed", "cancelled"):
        batch_id = batches[name]
        await wait_for_status(api, batch_id, {"archived"}, 30)
        gone = await wait_until(
            lambda b=batch_id: _gone(api, f"/v1/batches/{b}/jobs"), 30, "jobs listing 410"
        )
        assert gone.headers["content-type"].startswith("application/problem+json")
        assert gone.json()["type"] == "/problems/archived-jobs-removed"
    report = await api.get(f"/v1/batches/{batches['completed']}/report")
    assert report.status_code == 200, report.text
    kept = report.json()
    assert kept["status"] == "archived"
    for field in ("totals", "success_rate", "avg_duration_s", "failed_count", "metrics"):
        assert kept[field] == report_before[field], field
    async with store(stack.mongodb_url, stack.database) as db:

        async def views_dropped() -> bool:
            left = 0
            for batch_id in finished:
                for collection in ("job_views", "sched_jobs", "sched_chunks"):
                    left += await db[collection].count_documents({"batch_id": batch_id})
            return left == 0

        await wait_until(views_dropped, 30, "per-job documents dropped")
        for batch_id in finished:
            assert await db["batch_views"].find_one({"_id": batch_id}) is not None
            assert (await db["sched_batches"].find_one({"_id": batch_id}))["status"] == "archived"
    await assert_untouched(api, batches)

    # a policy now deleting archived batches at once: the next run deletes them
    await set_policy(api, archive_after_days=TINY, delete_archived_after_days=TINY)
    await asyncio.sleep(0.2)
    deleted_run = await run(api, dry_run=False)
    assert set(deleted_run["deleted_ids"]) == finished
    for batch_id in finished:
        await wait_until(
            lambda b=batch_id: _status_is(api, f"/v1/batches/{b}", 404), 30, "batch 404"
        )
    async with store(stack.mongodb_url, stack.database) as db:
        for batch_id in finished:
            assert await db["sched_batches"].find_one({"_id": batch_id}) is None
            await wait_until(
                lambda b=batch_id: _missing(db["batch_views"], b), 30, "batch view deleted"
            )
    await assert_untouched(api, batches)

    # both runs are in the audit log, with what they did
    for done in (archived_run, deleted_run):
        audit = await api.get("/v1/audit", params={"resource": done["run_id"]})
        assert audit.status_code == 200, audit.text
        [entry] = [e for e in audit.json()["items"] if e["action"] == "retention.run"]
        assert entry["detail"]["archived"] == done["archived"]
        assert entry["detail"]["deleted"] == done["deleted"]
        assert entry["user"] == "rita"
    listed = (await api.get("/v1/retention/runs")).json()
    assert {r["run_id"] for r in listed} >= {archived_run["run_id"], deleted_run["run_id"]}
    for name in ("running", "paused", "queued"):
        await api.post(f"/v1/batches/{batches[name]}/actions/cancel")


async def assert_untouched(api: httpx.AsyncClient, batches: dict[str, str]) -> None:
    """The batches that are not terminal keep their status and their per-job records."""
    expected = {"running": "running", "paused": "paused", "queued": "queued", "draft": "draft"}
    for name, status in expected.items():
        batch = (await api.get(f"/v1/batches/{batches[name]}")).json()
        assert batch["status"] == status, (name, batch)
        assert batch.get("archived_at") is None
        jobs = await api.get(f"/v1/batches/{batches[name]}/jobs")
        assert jobs.status_code == 200, jobs.text
        assert len(jobs.json()["items"]) == batch["progress"]["total"]


async def _gone(api: httpx.AsyncClient, path: str) -> httpx.Response | None:
    response = await api.get(path)
    return response if response.status_code == 410 else None


async def _status_is(api: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await api.get(path)).status_code == status


async def _missing(collection: Any, doc_id: str) -> bool:
    return await collection.find_one({"_id": doc_id}) is None


async def test_bad_policies_and_wrong_callers_are_refused(
    tenant_api: httpx.AsyncClient, stack: Stack
) -> None:
    api = tenant_api
    for body in (
        {"archive_after_days": -1},
        {"delete_archived_after_days": "soon"},
        {"archive_after_days": 100_000},
        {"enabled": True},
        {"archive_after_days": 1, "keep_forever": True},
    ):
        response = await api.put("/v1/retention", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await api.post("/v1/retention/run", json={"dry_run": "maybe"})).status_code == 422
    policy = await set_policy(api, enabled=True, archive_after_days=30)
    assert policy["revision"] >= 1
    assert policy["archive_after_days"] == 30
    assert (await api.get("/v1/retention")).json()["archive_after_days"] == 30

    operator = await registered_key(stack, tenant="default", user="otto", role="operator")
    async with httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {operator}"}, timeout=30
    ) as other:
        assert (await other.get("/v1/retention")).status_code == 403
        assert (await other.put("/v1/retention", json={})).status_code == 403
        assert (await other.post("/v1/retention/run", json={})).status_code == 403
    dry = await run(api, dry_run=True)
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as admin:
        # another tenant's admin does not see this tenant's run
        assert (await admin.get(f"/v1/retention/runs/{dry['run_id']}")).status_code == 404


async def test_archived_and_deleted_batches_leave_no_backups_or_files_behind(
    tenant_api: httpx.AsyncClient, api: httpx.AsyncClient, stack: Stack
) -> None:
    templates = [
        {"name": "Hello", "category": "mail", "body": "Hello {{name}}, welcome aboard."},
        {"name": "Hello again", "category": "mail", "body": "Hello {{name}}, welcome aboard."},
    ]
    other = await consolidation(api, await import_library(api, templates))  # another tenant
    api = tenant_api
    ids = await import_library(api, templates)
    by_hand, by_policy = [await consolidation(api, ids) for _ in range(2)]
    scans = await uploaded_files_batch(api)
    async with store(stack.mongodb_url, stack.database) as db:
        for batch_id in (by_hand, by_policy, other):
            assert await db["backups"].count_documents(batch_range(batch_id)) == 1
        files = await FileStore(db).batch_file_ids(scans)
        assert len(files) == 2

        # archived by hand: it can no longer be rolled back, so its backups go at once
        assert (await api.post(f"/v1/batches/{by_hand}/actions/archive")).status_code == 202
        assert await db["backups"].count_documents(batch_range(by_hand)) == 0
        refused = await api.post(f"/v1/batches/{by_hand}/actions/rollback", json={})
        assert refused.status_code == 409, refused.text

        # archived, then deleted, by the retention policy: backups, then the uploaded files
        await set_policy(api, archive_after_days=TINY, delete_archived_after_days=1.0)
        await asyncio.sleep(0.2)
        archived = await run(api, dry_run=False)
        assert by_policy in archived["archived_ids"]
        await wait_until(
            lambda: _count_is(db["backups"], batch_range(by_policy), 0), 30, "backups dropped"
        )
        assert len(await FileStore(db).batch_file_ids(scans)) == 2  # archived: files kept
        await set_policy(api, archive_after_days=TINY, delete_archived_after_days=TINY)
        await asyncio.sleep(0.2)
        deleted = await run(api, dry_run=False)
        assert scans in deleted["deleted_ids"]
        await wait_until(lambda: _status_is(api, f"/v1/batches/{scans}", 404), 30, "batch deleted")
        assert await FileStore(db).batch_file_ids(scans) == []
        for file_id in files:
            assert f"file_chunks.{file_id}" not in await db.list_collection_names()
        # the other tenant's batch, out of these runs' reach, keeps its backups
        assert await db["backups"].count_documents(batch_range(other)) == 1


async def consolidation(api: httpx.AsyncClient, ids: list[str]) -> str:
    made = await api.post(
        "/v1/batches",
        json={"name": "consolidate", "job_type": "templates.consolidate",
              "items": [{"template_ids": ids}]},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    batch_id: str = made.json()["id"]
    await wait_for_status(api, batch_id, {"completed"}, 60)
    return batch_id


async def uploaded_files_batch(api: httpx.AsyncClient) -> str:
    made = await api.post(
        "/v1/batches", json={"name": "scans", "job_type": "files.extract_metadata", "draft": True}
    )
    assert made.status_code == 201, made.text
    batch_id: str = made.json()["id"]
    files = [
        ("files", ("a.txt", b"alpha\n", "text/plain")),
        ("files", ("b.txt", b"b\n", "text/plain")),
    ]
    added = await api.post(f"/v1/batches/{batch_id}/items", files=files)
    assert added.status_code == 202, added.text
    assert (await api.post(f"/v1/batches/{batch_id}/submit")).status_code in (200, 202)
    await wait_for_status(api, batch_id, {"completed"}, 60)
    return batch_id


async def _count_is(collection: Any, query: dict[str, Any], count: int) -> bool:
    return await collection.count_documents(query) == count


async def test_a_batch_deleted_by_hand_leaves_nothing_behind(
    tenant_api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    api = tenant_api
    batch_id = await create(api, [{"seconds": 0}] * 3)
    await wait_for_status(api, batch_id, {"completed"}, 60)
    async with store(stack.mongodb_url, stack.database) as db:
        # a rollback the rollback service recorded (and refused: demo.sleep cannot roll back)
        rollback_id = await request_rollback(kafka_bootstrap, stack.prefix, batch_id)
        await wait_for_rollback(db, rollback_id, {"rollback_failed"}, 60)
        await wait_for_status(api, batch_id, {"rollback_failed"}, 60)

        async def kept() -> dict[str, int]:
            by_id = {
                c: await db[c].count_documents({"_id": batch_id})
                for c in ("sched_batches", "batch_views", "batch_logs")
            }
            by_batch = {
                c: await db[c].count_documents({"batch_id": batch_id})
                for c in ("sched_jobs", "job_views", "rollbacks")
            }
            return by_id | by_batch

        await wait_until(lambda: _all_there(kept), 30, "every service's documents")
        assert (await api.delete(f"/v1/batches/{batch_id}")).status_code == 204
        assert (await api.get(f"/v1/batches/{batch_id}")).status_code == 404
        # the scheduler, the reporter and the rollback service drop theirs on BatchDeleted
        await wait_until(lambda: _none_left(kept), 30, "documents of the deleted batch dropped")


async def _all_there(kept: Any) -> bool:
    return all((await kept()).values())


async def _none_left(kept: Any) -> bool:
    return not any((await kept()).values())
