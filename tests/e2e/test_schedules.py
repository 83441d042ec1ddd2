"""Schedules on the running system: the scheduler's leader fires due runs, batch-api makes one
batch per run, the overlap policies, enable/disable/delete, manual triggers, and refusals.

Cron expressions here have a sixth field (seconds) so that runs come every few seconds."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from jobs_support import wait_for_status
from stack_support import Stack

pytestmark = pytest.mark.e2e
EVERY_3_S = "* * * * * */3"


def spec(seconds: float, jobs: int = 1) -> dict[str, Any]:
    return {
        "job_type": "demo.sleep",
        "items": [{"seconds": seconds}] * jobs,
        "config": {"max_concurrent_jobs": 1},
    }


async def runs_of(api: httpx.AsyncClient, schedule_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/v1/schedules/{schedule_id}/runs")
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["items"]
    return runs


async def wait_runs(
    api: httpx.AsyncClient, schedule_id: str, count: int, within_s: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within_s
    runs = await runs_of(api, schedule_id)
    while len(runs) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        runs = await runs_of(api, schedule_id)
    assert len(runs) >= count, runs
    return runs


async def test_due_runs_make_one_batch_each_until_disabled_and_deleted(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    created = await api.post(
        "/v1/schedules",
        # `queue`: on a loaded machine a run may come before the previous batch finished;
        # every run must still make its batch here (skip is tested below).
        json={
            "name": "every three seconds",
            "cron": EVERY_3_S,
            "overlap": "queue",
            "spec": spec(0, 2),
        },
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    schedule_id = schedule["id"]
    assert created.headers["location"] == f"/v1/schedules/{schedule_id}"
    upcoming = schedule["next_runs"]
    assert len(upcoming) == 5
    assert upcoming == sorted(upcoming)

    runs = await wait_runs(api, schedule_id, 3, 60)
    assert all(r["outcome"] == "created" and r["trigger"] == "cron" for r in runs)
    assert len({r["run_id"] for r in runs}) == len(runs)  # one record per run
    # Runs are named by their due times: whole multiples of three seconds.
    assert all(int(r["run_at"][17:19]) % 3 == 0 for r in runs), runs
    made = (
        await api.get("/v1/batches", params={"tag": f"schedule:{schedule_id}", "limit": 500})
    ).json()["items"]
    batch_ids = {r["batch_id"] for r in runs}
    assert batch_ids <= {b["id"] for b in made}
    assert all(b["schedule_id"] == schedule_id for b in made if b["id"] in batch_ids)
    by_schedule = await api.get("/v1/batches", params={"schedule_id": schedule_id, "limit": 500})
    assert batch_ids <= {b["id"] for b in by_schedule.json()["items"]}
    assert all(b["name"].startswith("every three seconds ") for b in made)
    for batch_id in batch_ids:
        done = await wait_for_status(api, batch_id, {"completed"}, 60)
        assert done["progress"]["completed"] == 2

    disabled = await api.post(f"/v1/schedules/{schedule_id}/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False
    assert disabled.json()["next_runs"] == []
    await asyncio.sleep(2)  # a run fired just before the change may still be handled
    settled = len(await runs_of(api, schedule_id))
    await asyncio.sleep(7)
    assert len(await runs_of(api, schedule_id)) == settled  # nothing fires while disabled

    # Every batch of the schedule is one of its recorded runs: no run made two batches.
    made = (
        await api.get("/v1/batches", params={"tag": f"schedule:{schedule_id}", "limit": 500})
    ).json()["items"]
    recorded = {r["batch_id"] for r in await runs_of(api, schedule_id)}
    assert {b["id"] for b in made} == recorded

    assert (await api.delete(f"/v1/schedules/{schedule_id}")).status_code == 204
    assert (await api.get(f"/v1/schedules/{schedule_id}")).status_code == 404


async def test_a_one_run_schedule_makes_its_batch_at_its_time_then_rests(
    api: httpx.AsyncClient,
) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    created = await api.post(
        "/v1/schedules",
        json={"name": "once", "run_at": at.isoformat(), "spec": spec(0)},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["next_runs"] == [at.isoformat().replace("+00:00", "Z")]
    assert schedule["catch_up"] == "latest"

    [run] = await wait_runs(api, schedule["id"], 1, 60)
    assert (run["trigger"], run["outcome"]) == ("cron", "created")
    assert datetime.fromisoformat(run["run_at"]) == at
    await wait_for_status(api, run["batch_id"], {"completed"}, 60)
    rested = (await api.get(f"/v1/schedules/{schedule['id']}")).json()
    assert (rested["enabled"], rested["next_runs"]) == (False, [])
    assert datetime.fromisoformat(rested["run_at"]) == at
    again = await api.post(f"/v1/schedules/{schedule['id']}/enable")
    assert again.status_code == 422  # enabled as it is, it would run next year
    assert "time has passed" in again.json()["detail"]

    # triggered by hand before its time, that is its one run
    later = await api.post(
        "/v1/schedules",
        json={
            "name": "once, sooner",
            "run_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "spec": spec(0),
        },
    )
    assert later.status_code == 201, later.text
    triggered = await api.post(f"/v1/schedules/{later.json()['id']}/trigger")
    assert triggered.status_code == 202, triggered.text
    assert triggered.json()["outcome"] == "created"
    after = (await api.get(f"/v1/schedules/{later.json()['id']}")).json()
    assert (after["enabled"], after["next_runs"]) == (False, [])

    # a time in the past is refused, with the field named
    late = await api.post(
        "/v1/schedules",
        json={"name": "late", "run_at": "2020-01-01T00:00:00Z", "spec": spec(0)},
    )
    assert late.status_code == 422
    assert "run_at" in late.text
    assert "in the future" in late.text


async def test_overlap_policies_on_manual_triggers(api: httpx.AsyncClient, stack: Stack) -> None:
    async def schedule(overlap: str) -> str:
        created = await api.post(
            "/v1/schedules",
            json={
                "name": f"overlap {overlap}",
                "cron": "0 3 1 1 *",  # once a year: only manual runs here
                "overlap": overlap,
                "spec": spec(30),
            },
        )
        assert created.status_code == 201, created.text
        schedule_id: str = created.json()["id"]
        return schedule_id

    async def trigger(schedule_id: str) -> dict[str, Any]:
        response = await api.post(f"/v1/schedules/{schedule_id}/trigger")
        assert response.status_code == 202, response.text
        run: dict[str, Any] = response.json()
        assert run["trigger"] == "manual"
        return run

    skip = await schedule("skip")
    first = await trigger(skip)
    assert first["outcome"] == "created"
    second = await trigger(skip)
    assert second["outcome"] == "skipped"
    assert first["batch_id"] in second["detail"]

    queue = await schedule("queue")
    ahead = await trigger(queue)
    behind = await trigger(queue)
    assert behind["outcome"] == "created"
    queued = (await api.get(f"/v1/batches/{behind['batch_id']}")).json()
    assert queued["config"]["depends_on"] == {"batches": [ahead["batch_id"]], "on": "finished"}
    assert queued["status"] == "queued"

    replace = await schedule("cancel_previous")
    old = await trigger(replace)
    new = await trigger(replace)
    assert new["outcome"] == "created"
    await wait_for_status(api, old["batch_id"], {"cancelled"}, 60)

    listed = await api.get("/v1/schedules", params={"q": "overlap"})
    assert {s["id"] for s in listed.json()["items"]} >= {skip, queue, replace}
    history = await runs_of(api, skip)
    assert [r["outcome"] for r in history] == ["skipped", "created"]  # newest first
    assert (await api.get(f"/v1/schedules/{skip}")).json()["run_count"] == 2

    for batch_id in (first["batch_id"], ahead["batch_id"], behind["batch_id"], new["batch_id"]):
        await api.post(f"/v1/batches/{batch_id}/actions/cancel")
    for schedule_id in (skip, queue, replace):
        assert (await api.delete(f"/v1/schedules/{schedule_id}")).status_code == 204


async def test_a_schedule_from_a_template_and_every_refusal(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    template = (
        await api.post(
            "/v1/templates",
            json={"name": "tpl for schedule", "spec": {"job_type": "demo.sleep"}},
        )
    ).json()
    created = await api.post(
        "/v1/schedules",
        json={
            "name": "from a template",
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "template_id": template["id"],
            "overrides": {"items": [{"seconds": 0}] * 3, "priority": "low"},
        },
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert all(t.endswith(("00:30:00Z", "01:30:00Z")) for t in schedule["next_runs"])
    run = (await api.post(f"/v1/schedules/{schedule['id']}/trigger")).json()
    assert run["outcome"] == "created", run
    done = await wait_for_status(api, run["batch_id"], {"completed"}, 60)
    assert (done["progress"]["total"], done["priority"]) == (3, "low")
    assert f"schedule:{schedule['id']}" in done["tags"]
    # The template goes away: the next run fails with the reason, and nothing breaks.
    assert (await api.delete(f"/v1/templates/{template['id']}")).status_code == 204
    failed = (await api.post(f"/v1/schedules/{schedule['id']}/trigger")).json()
    assert failed["outcome"] == "failed"
    assert template["id"] in failed["detail"]

    bad = [
        {"name": "x", "cron": "every day", "spec": spec(0)},
        {"name": "x", "cron": "0 3 * * *", "timezone": "Mars/Olympus", "spec": spec(0)},
        {"name": "x", "cron": "0 3 * * *"},
        {"name": "x", "cron": "0 3 * * *", "spec": spec(0), "template_id": "t_1"},
        {"name": "x", "cron": "0 3 * * *", "template_id": "t_nothere"},
        {"name": "x", "cron": "0 3 * * *", "spec": {"job_type": "demo.sleep"}},
        {"name": "x", "cron": "0 3 * * *", "spec": spec(0), "overlap": "sometimes"},
    ]
    for body in bad:
        response = await api.post("/v1/schedules", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")

    viewer = (await api.post("/v1/keys", json={"name": "sched viewer", "role": "viewer"})).json()
    as_viewer = {"Authorization": f"Bearer {viewer['key']}"}
    denied = await api.post(
        "/v1/schedules", headers=as_viewer, json={"name": "x", "cron": "0 3 * * *", "spec": spec(0)}
    )
    assert denied.status_code == 403
    # A private schedule of the admin is not the viewer's to see.
    assert (await api.get(f"/v1/schedules/{schedule['id']}", headers=as_viewer)).status_code == 404
    assert (await api.delete(f"/v1/schedules/{schedule['id']}")).status_code == 204


async def test_a_consolidation_on_a_schedule_is_planned_afresh_at_each_run(
    api: httpx.AsyncClient, unique: str
) -> None:
    category = f"nightly-{unique}"
    body = "Your parcel {{id}} is on its way."

    async def add(name: str, text: str) -> str:
        made = await api.post(
            "/v1/library/templates", json={"name": name, "category": category, "body": text}
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    first = [await add("Parcel", body), await add("Parcel copy", body.upper())]
    await add("Refund", "Your refund is on its way.")
    consolidation = {"filter": {"category": category}, "operation": "merge"}
    both = await api.post(
        "/v1/schedules",
        json={"name": "x", "cron": EVERY_3_S, "spec": spec(0), "consolidation": consolidation},
    )
    assert both.status_code == 422, both.text
    assert "one of `template_id`, `spec` or `consolidation`" in both.json()["detail"]
    created = await api.post(
        "/v1/schedules",
        json={
            "name": "tidy the parcels",
            "cron": EVERY_3_S,
            "overlap": "skip",
            "consolidation": consolidation,
        },
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["consolidation"]["filter"] == {"category": category, "tags": None,
                                                   "name_contains": None}  # fmt: skip
    sid = schedule["id"]
    for change, said in (({"consolidation": None}, "may not be null"),
                         ({"spec": spec(0)}, "not `spec`")):  # fmt: skip
        refused = await api.patch(f"/v1/schedules/{sid}", json=change)
        assert refused.status_code == 422, refused.text
        assert said in refused.json()["detail"]

    async def merged() -> set[str]:
        listed = await api.get(
            "/v1/library/templates", params={"category": category, "status": "merged"}
        )
        return {t["id"] for t in listed.json()["items"]}

    async def until_merged(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(await merged()) < count:
            assert time.monotonic() < deadline, await runs_of(api, sid)
            await asyncio.sleep(0.5)

    await until_merged(1)
    assert len((await merged()) & set(first)) == 1
    late = await add("Parcel again", f"  {body}  ")  # added after the schedule was made
    await until_merged(2)
    assert late in await merged()  # the canonical one is the oldest
    await api.post(f"/v1/schedules/{sid}/disable")
    await asyncio.sleep(2)
    runs = await runs_of(api, sid)
    assert any(r["outcome"] == "created" for r in runs)
    assert all(r["outcome"] in ("created", "skipped") for r in runs), runs
    batch = (await api.get(f"/v1/batches/{runs[0]['batch_id']}")).json()
    assert batch["job_type"] == "templates.consolidate"
    assert batch["schedule_id"] == sid
    assert batch["name"].startswith("tidy the parcels ")
    assert (await api.delete(f"/v1/schedules/{sid}")).status_code == 204
