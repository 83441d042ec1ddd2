"""Rollback on the real stack: a consolidated library of 2,000 templates is restored byte for
byte; a corrupt backup makes the rollback refuse, naming the job, and change nothing; a dry
run over the API returns the plan, is checked by the rollback service and changes nothing; a batch without backups
is refused with the reason; a batch that fails with `rollback_on_failure` is rolled back by
itself, and a job type that cannot roll back may not ask for it. A template edited after the
consolidation refuses the rollback (it would overwrite the edit) unless it is forced; the
API's dry run has the rollback service check its plan and says so beforehand."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Any

import httpx
import pytest
from bson.raw_bson import RawBSONDocument
from jobs_support import (
    import_library,
    metric_totals,
    request_rollback,
    store,
    wait_for_rollback,
    wait_for_status,
)
from kafka_support import read_all
from library_data import make_library, wide_library
from pymongo import AsyncMongoClient
from readmodels import settled_job_views
from sse_support import sse_frames
from stack_support import Stack

from contracts.codec import decode
from contracts.topics import Topics
from servicekit.backups import batch_range

pytestmark = pytest.mark.e2e


async def raw_library(stack: Stack, ids: list[str]) -> dict[str, bytes]:
    """Every template's stored BSON bytes, by id."""
    client: AsyncMongoClient[RawBSONDocument] = AsyncMongoClient(
        stack.mongodb_url, document_class=RawBSONDocument
    )
    try:
        cursor = client[stack.database]["library_templates"].find({"_id": {"$in": ids}})
        return {doc["_id"]: doc.raw async for doc in cursor}
    finally:
        await client.close()


async def consolidate(api: httpx.AsyncClient, ids: list[str], **extra: Any) -> tuple[str, int]:
    response = await api.post("/v1/library/consolidations", json={"template_ids": ids, **extra})
    assert response.status_code == 201, response.text
    batch_id = response.json()["batch_id"]
    await wait_for_status(api, batch_id, {"completed"}, 500)
    return batch_id, response.json()["plan"]["jobs"]


async def wait_for_rollback_shown(api: httpx.AsyncClient, batch_id: str) -> dict[str, Any]:
    """The batch's `rollback` once it says the rollback ended."""
    rollback: dict[str, Any] | None = None
    for _ in range(60):
        rollback = (await api.get(f"/v1/batches/{batch_id}")).json()["rollback"]
        if rollback is not None and rollback["status"] != "rolling_back":
            return rollback
        await asyncio.sleep(0.5)
    raise AssertionError(f"the batch shows its rollback as {rollback}")


async def dry_run_check(
    api: httpx.AsyncClient, batch_id: str, **body: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A dry run over the API: its plan, and its check once the rollback service ended it."""
    answer = await api.post(
        f"/v1/batches/{batch_id}/actions/rollback", json={"dry_run": True, **body}
    )
    assert answer.status_code == 202, answer.text
    plan = answer.json()["plan"]
    url = f"/v1/batches/{batch_id}/rollback-checks/{plan['check_id']}"
    check: dict[str, Any] = {}
    for _ in range(120):
        response = await api.get(url)
        assert response.status_code == 200, response.text
        check = response.json()
        if check["status"] != "checking":
            return plan, check
        await asyncio.sleep(0.5)
    raise AssertionError(f"the check did not end: {check}")


async def rollback_events(kafka: str, stack: Stack, rollback_id: str) -> list[dict[str, Any]]:
    topics = Topics(stack.prefix)
    found: list[dict[str, Any]] = []
    for record in await read_all(kafka, topics, [topics.rollback_events]):
        envelope, _ = decode(record.value or b"")
        if envelope.data.get("rollback_id") == rollback_id:
            found.append({"type": envelope.type, **envelope.data})
    return found


@pytest.mark.timeout(900)
async def test_two_thousand_templates_consolidated_then_restored_byte_for_byte(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    templates, expected = make_library(random.Random(2000), 2000)
    ids = await import_library(api, templates)
    before = await raw_library(stack, ids)
    assert len(before) == 2000
    batch_id, jobs = await consolidate(api, ids)
    totals = await metric_totals(stack, batch_id, jobs)
    assert {k: totals[k] for k in expected} == {
        "templates_processed": 2000,
        "duplicates_removed": 250,
        "conflicts_resolved": 50,
    }
    changed = await raw_library(stack, ids)
    # 250 duplicates repointed, 50 renamed, and the canonical templates that took their tags
    assert sum(changed[i] != before[i] for i in ids) >= 300
    rollback_id = await request_rollback(kafka_bootstrap, stack.prefix, batch_id)
    async with store(stack.mongodb_url, stack.database) as db:
        done = await wait_for_rollback(db, rollback_id, {"rolled_back", "rollback_failed"}, 300)
    assert done["status"] == "rolled_back", done.get("reason")
    assert done["done_count"] == jobs
    batch = await wait_for_status(api, batch_id, {"rolled_back"}, 60)
    assert batch["progress"]["completed"] == jobs
    # the batch shows its rollback: every job restored (its end is projected beside the
    # batch's status, so a moment later at most)
    shown = await wait_for_rollback_shown(api, batch_id)
    assert (shown["rollback_id"], shown["done"], shown["total"]) == (rollback_id, jobs, jobs)
    assert shown["percent"] == 100.0
    assert shown["finished_at"] is not None
    again = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
    assert again.status_code == 409, again.text
    assert "rolled_back" in again.json()["detail"]
    after = await raw_library(stack, ids)
    assert after.keys() == before.keys()
    assert [i for i in ids if after[i] != before[i]] == []
    events = await rollback_events(kafka_bootstrap, stack, rollback_id)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["RollbackStarted", "BackupValidated", "RollbackPlanned"]
    assert kinds.count("RollbackProgress") == jobs
    assert kinds[-1] == "RollbackCompleted"
    plan = next(e for e in events if e["type"] == "RollbackPlanned")["steps"]
    # as times: a string like "…:15Z" (no fraction) sorts after "…:15.966Z"
    completions = [datetime.fromisoformat(s["completed_at"]) for s in plan]
    assert completions == sorted(completions, reverse=True), "not in reverse completion order"


async def test_a_corrupt_backup_is_refused_naming_the_job_and_nothing_changes(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    templates, _ = make_library(random.Random(5), 120, exact=10, near=5, conflicts=5)
    ids = await import_library(api, templates)
    batch_id, jobs = await consolidate(api, ids, templates_per_job=30)
    assert jobs >= 3
    async with store(stack.mongodb_url, stack.database) as db:
        backups = [b async for b in db["backups"].find(batch_range(batch_id))]
        victim = sorted(b["_id"] for b in backups)[1]
        doc = await db["backups"].find_one({"_id": victim})
        assert doc is not None
        tampered = doc["data"].replace('"status": "active"', '"status": "archived"', 1)
        assert tampered != doc["data"]
        await db["backups"].update_one({"_id": victim}, {"$set": {"data": tampered}})
        consolidated = await raw_library(stack, ids)

        _, dry = await dry_run_check(api, batch_id)
        assert dry["status"] == "refused", dry
        assert [r["job_id"] for r in dry["refused"]] == [victim]
        assert "checksum" in dry["refused"][0]["reason"]
        assert dry["refused_total"] == 1
        assert victim in dry["reason"]

        rollback_id = await request_rollback(kafka_bootstrap, stack.prefix, batch_id)
        refused = await wait_for_rollback(db, rollback_id, {"rolled_back", "rollback_failed"}, 60)
    assert refused["status"] == "rollback_failed"
    assert victim in refused["reason"]
    assert [r["job_id"] for r in refused["refusals"]] == [victim]
    assert "checksum" in refused["refusals"][0]["reason"]
    assert await raw_library(stack, ids) == consolidated, "a refused rollback changed data"
    events = await rollback_events(kafka_bootstrap, stack, rollback_id)
    failed = next(e for e in events if e["type"] == "RollbackFailed")
    assert victim in failed["failed_jobs"]
    # the batch shows the failed rollback, and may be rolled back again (the scheduler's
    # unit tests follow a second rollback to rolled_back)
    await wait_for_status(api, batch_id, {"rollback_failed"}, 60)
    retried = await api.post(
        f"/v1/batches/{batch_id}/actions/rollback", json={"dry_run": True, "reason": "again"}
    )
    assert retried.status_code == 202, retried.text


async def test_dry_run_and_partial_rollback(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    templates, _ = make_library(random.Random(6), 90, exact=9, near=3, conflicts=3)
    ids = await import_library(api, templates)
    before = await raw_library(stack, ids)
    batch_id, jobs = await consolidate(api, ids, templates_per_job=30)
    consolidated = await raw_library(stack, ids)
    # the API's plan reads the job views, which may trail the batch's own view by a moment
    await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == jobs and all(v["status"] == "completed" for v in vs),
    )
    action = f"/v1/batches/{batch_id}/actions/rollback"
    planned = await api.post(action, json={"dry_run": True})
    assert planned.status_code == 202, planned.text
    plan = planned.json()["plan"]
    assert plan["count"] == jobs
    finished = [datetime.fromisoformat(j["finished_at"]) for j in plan["jobs"]]
    assert finished == sorted(finished, reverse=True)
    some = [plan["jobs"][0]["job_id"]]
    partial_plan = await api.post(action, json={"dry_run": True, "job_ids": some})
    assert [j["job_id"] for j in partial_plan.json()["plan"]["jobs"]] == some
    assert (await api.post(action, json={"dry_run": True, "what": 1})).status_code == 422
    assert (await api.get(f"/v1/batches/{batch_id}")).json()["status"] == "completed"
    _, dry = await dry_run_check(api, batch_id)  # the rollback service plans it: clear
    assert (dry["status"], dry["jobs"], dry["refused"]) == ("clear", jobs, [])
    assert await raw_library(stack, ids) == consolidated
    async with store(stack.mongodb_url, stack.database) as db:
        for _ in range(50):  # the dry run's plan goes once its outcome is out: no plan kept
            if await db["rollbacks"].count_documents({"batch_id": batch_id}) == 0:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the dry run's plan was kept")
        chosen = plan["jobs"][-1]["job_id"]  # the first to complete: the plan's last step
        partial_id = await request_rollback(
            kafka_bootstrap, stack.prefix, batch_id, job_ids=[chosen]
        )
        partial = await wait_for_rollback(db, partial_id, {"rolled_back", "rollback_failed"}, 60)
        assert partial["status"] == "rolled_back", partial.get("reason")
        assert [s["job_id"] for s in partial["steps"]] == [chosen]
        assert partial["done_count"] == 1
        backup = await db["backups"].find_one({"_id": chosen})
    # the jobs listing says which job was rolled back; every job still completed
    await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: any(v.get("rolled_back_at") for v in vs),
    )
    listed = (await api.get(f"/v1/batches/{batch_id}/jobs")).json()["items"]
    assert [j["id"] for j in listed if j["rolled_back_at"]] == [chosen]
    assert {j["status"] for j in listed} == {"completed"}
    assert backup is not None
    restored = set(backup["item"]["template_ids"])
    after = await raw_library(stack, ids)
    assert all(after[i] == before[i] for i in restored)
    assert all(after[i] == consolidated[i] for i in ids if i not in restored)


async def test_a_batch_without_backups_is_refused_with_the_reason(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    templates, _ = make_library(random.Random(8), 20, exact=2, near=0, conflicts=1)
    ids = await import_library(api, templates)
    batch_id, _ = await consolidate(api, ids, backup_strategy="none")
    # the API refuses it at once, and the batch keeps its status
    answer = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "backup_strategy none" in answer.json()["detail"]
    assert (await api.get(f"/v1/batches/{batch_id}")).json()["status"] == "completed"
    # a request that reaches the rollback service anyway fails with the same reason
    async with store(stack.mongodb_url, stack.database) as db:
        rollback_id = await request_rollback(kafka_bootstrap, stack.prefix, batch_id)
        refused = await wait_for_rollback(db, rollback_id, {"rolled_back", "rollback_failed"}, 60)
    assert refused["status"] == "rollback_failed"
    assert "backup_strategy none" in refused["reason"]
    await wait_for_status(api, batch_id, {"rollback_failed"}, 60)


async def test_a_failed_batch_with_rollback_on_failure_is_rolled_back_by_itself(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    templates, _ = make_library(random.Random(11), 12, exact=4, near=0, conflicts=0)
    merged_ids = await import_library(api, templates)
    # a template broken in the store (its body gone): its job fails, and with a failure
    # threshold of 0 the batch fails (a conflict awaiting a decision would not: no error)
    broken_ids = await import_library(
        api,
        [
            {"name": "Greeting", "category": "mail", "body": "Hello {{name}}, welcome aboard."},
            {"name": "Shipped", "category": "mail", "body": "Your order {{order}} shipped."},
        ],
    )
    async with store(stack.mongodb_url, stack.database) as db:
        await db["library_templates"].update_one({"_id": broken_ids[0]}, {"$unset": {"body": ""}})
        try:
            await _rolled_back_by_itself(api, stack, merged_ids, broken_ids)
        finally:  # other tests plan over the whole library: it must not hold a broken one
            await db["library_templates"].delete_one({"_id": broken_ids[0]})


async def _rolled_back_by_itself(
    api: httpx.AsyncClient, stack: Stack, merged_ids: list[str], broken_ids: list[str]
) -> None:
    before = await raw_library(stack, merged_ids)
    created = await api.post(
        "/v1/batches",
        json={
            "name": "roll back on failure",
            "job_type": "templates.consolidate",
            "items": [{"template_ids": merged_ids}, {"template_ids": broken_ids}],
            "config": {
                "max_concurrent_jobs": 1,
                "failure_threshold": 0,
                "rollback_on_failure": True,
            },
        },
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    done = await wait_for_status(api, batch_id, {"rolled_back", "rollback_failed"}, 120)
    assert done["status"] == "rolled_back", (done.get("reason"), done["progress"])
    assert done["progress"]["completed"] == 1
    assert done["progress"]["failed"] == 1
    jobs = (await api.get(f"/v1/batches/{batch_id}/jobs")).json()["items"]
    assert jobs[0]["status"] == "completed"
    assert jobs[0]["output"]["duplicates_removed"] == 4  # it changed the library
    assert jobs[1]["error"]["class"] == "InvalidTemplate"  # the broken template
    # and the rollback put every template back as it was
    assert await raw_library(stack, merged_ids) == before


async def test_rollback_on_failure_is_refused_for_a_job_type_that_cannot_roll_back(
    api: httpx.AsyncClient,
) -> None:
    body = {"name": "no way back", "job_type": "demo.sleep", "items": [{}]}
    refused = await api.post("/v1/batches", json=body | {"config": {"rollback_on_failure": True}})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "job type demo.sleep cannot be rolled back" in refused.json()["detail"]
    # nor may a batch template ask for it, nor a draft's configuration be changed to
    spec = {"job_type": "demo.sleep", "config": {"rollback_on_failure": True}}
    template = await api.post("/v1/templates", json={"name": "no way back", "spec": spec})
    assert template.status_code == 422, template.text
    draft = await api.post("/v1/batches", json=body | {"draft": True})
    assert draft.status_code == 201, draft.text
    changed = await api.patch(
        f"/v1/batches/{draft.json()['id']}", json={"config": {"rollback_on_failure": True}}
    )
    assert changed.status_code == 422, changed.text
    assert not (await api.get(f"/v1/batches/{draft.json()['id']}")).json()["config"][
        "rollback_on_failure"
    ]


async def test_a_template_edited_after_the_batch_refuses_the_rollback_unless_forced(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    templates, _ = make_library(random.Random(11), 120, exact=10, near=5, conflicts=5)
    ids = await import_library(api, templates)
    before = await raw_library(stack, ids)
    batch_id, _ = await consolidate(api, ids, templates_per_job=30)
    consolidated = await raw_library(stack, ids)
    edited = next(i for i in ids if consolidated[i] != before[i])
    patched = await api.patch(f"/v1/library/templates/{edited}", json={"body": "edited by hand"})
    assert patched.status_code == 200, patched.text
    after_edit = await raw_library(stack, ids)

    # the dry run says so before anything is asked of the real rollback
    plan, check = await dry_run_check(api, batch_id)
    assert check["status"] == "refused", check
    assert check["refused_total"] == len(check["refused"]) >= 1
    assert any(f"changed after the job: {edited}" in r["reason"] for r in check["refused"])
    assert all(r["job_id"].startswith(f"{batch_id}.") for r in check["refused"])
    _, forced_check = await dry_run_check(api, batch_id, force=True)
    assert (forced_check["status"], forced_check["jobs"], forced_check["force"]) == (
        "clear",
        plan["count"],
        True,
    )
    assert (await api.get(f"/v1/batches/{batch_id}")).json()["rollback"] is None
    unknown = await api.get(f"/v1/batches/{batch_id}/rollback-checks/nope")
    assert unknown.status_code == 404, unknown.text
    assert await raw_library(stack, ids) == after_edit, "a dry run changed data"

    refused = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
    assert refused.status_code == 202, refused.text
    batch = await wait_for_status(api, batch_id, {"rollback_failed"}, 60)
    shown = await wait_for_rollback_shown(api, batch_id)
    assert shown["status"] == "rollback_failed"
    assert f"changed after the job: {edited}" in shown["reason"]
    assert "nothing was changed" in shown["reason"]
    assert edited in (batch["reason"] or "")
    assert await raw_library(stack, ids) == after_edit, "a refused rollback changed data"

    forced = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={"force": True})
    assert forced.status_code == 202, forced.text
    await wait_for_status(api, batch_id, {"rolled_back"}, 120)
    assert await raw_library(stack, ids) == before, "the forced rollback restored the library"


async def test_a_long_rollback_does_not_hold_another_batchs(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    """A rollback ran inside the handler of its request: every request behind it, another
    batch's too, waited until it had restored its last job. Now a small batch's rollback asked for after a long one's ends
    while the long one still runs, and both end restored."""
    big_ids = await import_library(api, wide_library(random.Random(21), 4000))
    small, _ = make_library(random.Random(22), 40, exact=4, near=2, conflicts=2)
    small_ids = await import_library(api, small)
    big_before = await raw_library(stack, big_ids)
    small_before = await raw_library(stack, small_ids)
    big_batch, big_jobs = await consolidate(
        api, big_ids, templates_per_job=2, max_concurrent_jobs=1000
    )
    small_batch, _ = await consolidate(api, small_ids)
    assert await raw_library(stack, big_ids) != big_before, "the consolidation changed nothing"

    for batch_id in (big_batch, small_batch):
        asked = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
        assert asked.status_code == 202, asked.text
    await wait_for_status(api, small_batch, {"rolled_back"}, 60)
    big_now = (await api.get(f"/v1/batches/{big_batch}")).json()
    assert big_now["status"] in {"completed", "rolling_back"}, big_now["status"]  # not ended
    assert big_now["rollback"] is None or big_now["rollback"]["done"] < big_jobs
    assert await raw_library(stack, small_ids) == small_before

    await wait_for_status(api, big_batch, {"rolled_back"}, 300)
    assert await raw_library(stack, big_ids) == big_before


async def test_the_tenant_stream_shows_a_rollback_until_it_ends(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    """`GET /v1/events` had no `rollback` frames: only a stream of the batch itself showed one."""
    ids = await import_library(api, wide_library(random.Random(31), 1000))
    batch_id, jobs = await consolidate(api, ids, templates_per_job=2, max_concurrent_jobs=1000)
    frames: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=None) as client,
        client.stream("GET", "/v1/events") as stream,
    ):
        assert stream.status_code == 200

        async def until_rolled_back() -> None:
            async for name, body in sse_frames(stream):
                if name == "rollback" and body["batch_id"] == batch_id:
                    frames.append(body)
                    if body["status"] != "rolling_back":
                        return

        reading = asyncio.create_task(asyncio.wait_for(until_rolled_back(), 60))
        await asyncio.sleep(1.0)  # the stream follows Kafka from now on
        asked = await api.post(f"/v1/batches/{batch_id}/actions/rollback", json={})
        assert asked.status_code == 202, asked.text
        await reading
    assert (frames[-1]["status"], frames[-1]["done"], frames[-1]["total"]) == (
        "rolled_back",
        jobs,
        jobs,
    )
    done = [f["done"] for f in frames]
    assert done == sorted(done)
