"""Batch policies as a user sees them over HTTP on the real stack: a deadline that cannot be
met shows `deadline_at_risk` (and `BatchDeadlineAtRisk` is published once);
`on_deadline_missed: cancel` ends the batch `cancelled` with the reason; a stagger spaces
job starts during the ramp; a batch with `depends_on` waits `queued` (`waiting_for`) until
its dependency holds, is cancelled with the reason when it cannot hold any more, and the
API refuses unknown, foreign, self and cyclic dependencies; a batch none of whose jobs
completed ends `failed`.

Timing: assertions are orderings and lower bounds, never tight upper bounds."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from cli_support import Cli, cli_env
from pymongo import AsyncMongoClient
from stack_support import Stack

from batch_api.adapters.keys import ApiKeyStore
from contracts.codec import decode
from contracts.topics import Topics

pytestmark = pytest.mark.e2e


async def create(api: httpx.AsyncClient, items: list[dict[str, Any]], **extra: Any) -> str:
    body = {"name": "policy", "job_type": "demo.sleep", "items": items, **extra}
    response = await api.post("/v1/batches", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def wait_for(
    api: httpx.AsyncClient,
    batch_id: str,
    check: Callable[[dict[str, Any]], bool],
    within_s: float = 60,
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await api.get(f"/v1/batches/{batch_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if check(body):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"batch {batch_id} never matched: {body}")


def ended(b: dict[str, Any]) -> bool:
    return b["status"] in {"completed", "completed_with_errors", "failed", "cancelled"}


async def batch_events(kafka: str, stack: Stack, batch_id: str) -> list[dict[str, Any]]:
    """Every event on `batch.events` about `batch_id`, in order, as `{type, **data}`."""
    consumer = AIOKafkaConsumer(
        Topics(stack.prefix).batch_events,
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        found: list[dict[str, Any]] = []
        quiet = 0
        while quiet < 2:  # read until two fetches in a row bring nothing new
            fetched = await consumer.getmany(timeout_ms=1500, max_records=5000)
            quiet = 0 if any(fetched.values()) else quiet + 1
            for records in fetched.values():
                for record in records:
                    envelope, _ = decode(record.value or b"")
                    if envelope.batch_id == batch_id:
                        found.append({"type": envelope.type, **envelope.data})
        return found
    finally:
        await consumer.stop()


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


# ------------------------------------------------------------------------------ deadlines
@pytest.fixture
def cli(stack: Stack, tmp_path: Path) -> Cli:
    return Cli(cli_env(stack, tmp_path, COLUMNS="160"))


async def test_a_deadline_that_cannot_be_met_is_at_risk_once(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str, cli: Cli
) -> None:
    # Forty half-second jobs one at a time need twenty seconds; the deadline is in two.
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    batch_id = await create(
        api,
        [{"seconds": 0.5}] * 40,
        config={
            "max_concurrent_jobs": 1,
            "deadline": deadline.isoformat(),
            "on_deadline_missed": "continue",
        },
    )
    at_risk = await wait_for(api, batch_id, lambda b: b["deadline_at_risk"] or ended(b))
    assert at_risk["deadline_at_risk"] is True, at_risk
    listed = (await api.get("/v1/batches", params={"limit": 20})).json()["items"]
    assert [b["deadline_at_risk"] for b in listed if b["id"] == batch_id] == [True]
    shown = await asyncio.to_thread(cli, "status", batch_id)
    assert shown.returncode == 0, shown.stderr
    assert "at risk" in shown.stdout, shown.stdout
    # `continue`: past its deadline the batch keeps running.
    await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 1.5)
    late = (await api.get(f"/v1/batches/{batch_id}")).json()
    assert (late["status"], late["deadline_at_risk"]) == ("running", True), late
    response = await api.post(f"/v1/batches/{batch_id}/actions/cancel")
    assert response.status_code == 202, response.text
    assert (await wait_for(api, batch_id, ended))["status"] == "cancelled"
    events = await batch_events(kafka_bootstrap, stack, batch_id)
    kinds = [e["type"] for e in events]
    assert kinds.count("BatchDeadlineAtRisk") == 1, kinds
    assert kinds.count("BatchDeadlineMissed") == 1, kinds
    missed = next(e for e in events if e["type"] == "BatchDeadlineMissed")
    assert missed["action"] == "continue"


async def test_a_missed_deadline_with_cancel_ends_the_batch_cancelled(
    api: httpx.AsyncClient,
) -> None:
    batch_id = await create(
        api,
        [{"seconds": 0.5}] * 20,
        config={"max_concurrent_jobs": 1, "deadline": soon(1.5), "on_deadline_missed": "cancel"},
    )
    final = await wait_for(api, batch_id, ended)
    assert final["status"] == "cancelled", final
    assert final["reason"] == "deadline missed"
    assert final["deadline_at_risk"] is True
    progress = final["progress"]
    assert progress["completed"] < 20
    assert progress["cancelled"] >= 1
    assert progress["completed"] + progress["cancelled"] + progress["failed"] == 20


# ------------------------------------------------------------------------------- stagger
async def test_a_stagger_spaces_the_starts_of_the_ramp(api: httpx.AsyncClient) -> None:
    interval_s, ramp = 1.0, 4
    batch_id = await create(
        api,
        [{"seconds": 0.05}] * 8,
        config={
            "max_concurrent_jobs": 8,
            "stagger": {"start_interval_ms": int(interval_s * 1000), "ramp_up_jobs": ramp},
        },
    )
    await wait_for(api, batch_id, ended)
    jobs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # job views converge a moment after the batch view
        jobs = (await api.get(f"/v1/batches/{batch_id}/jobs", params={"limit": 50})).json()["items"]
        if len(jobs) == 8 and all(j["started_at"] for j in jobs):
            break
        await asyncio.sleep(0.3)
    starts = sorted(datetime.fromisoformat(j["started_at"]).timestamp() for j in jobs)
    assert len(starts) == 8
    ramp_gaps = [b - a for a, b in itertools.pairwise(starts[:ramp])]
    # The scheduler spaces dispatches by the interval; starts carry each executor's pickup
    # latency, so part of the interval is left for its jitter on a loaded machine.
    assert all(gap >= 0.6 * interval_s for gap in ramp_gaps), ramp_gaps
    assert starts[ramp - 1] - starts[0] >= (ramp - 1) * interval_s - 0.4 * interval_s
    # After the ramp nothing holds starts back: the other four start together, not spaced
    # (a loose bound: spaced, they would need three intervals).
    assert starts[-1] - starts[ramp] < (8 - ramp - 1) * interval_s, starts


# --------------------------------------------------------------------------- dependencies
async def test_a_dependent_batch_waits_queued_then_runs_after_its_dependency(
    api: httpx.AsyncClient, cli: Cli
) -> None:
    first = await create(api, [{"seconds": 0.75}] * 8, config={"max_concurrent_jobs": 1})
    second = await create(api, [{"seconds": 0.05}] * 2, config={"depends_on": {"batches": [first]}})
    waiting = await wait_for(api, second, lambda b: b["waiting_for"] or ended(b))
    assert waiting["status"] == "queued", waiting
    assert waiting["waiting_for"] == [first]
    assert first in (waiting["reason"] or "")
    assert waiting["progress"]["completed"] == 0
    listed = (await api.get("/v1/batches", params={"status": "queued"})).json()["items"]
    assert [b["waiting_for"] for b in listed if b["id"] == second] == [[first]]
    shown = await asyncio.to_thread(cli, "status", second)
    assert shown.returncode == 0, shown.stderr
    assert f"Waiting for  {first}" in shown.stdout, shown.stdout
    done = await wait_for(api, second, ended)
    assert done["status"] == "completed", done
    assert done["waiting_for"] == []
    assert done["reason"] is None
    dependency = (await api.get(f"/v1/batches/{first}")).json()
    assert dependency["status"] == "completed"
    # Both times come from the scheduler's clock: the dependent started after the end.
    assert done["started_at"] >= dependency["finished_at"]


async def test_a_failed_dependency_cancels_on_completed_and_runs_on_finished(
    api: httpx.AsyncClient,
) -> None:
    failing = await create(
        api,
        [{"seconds": 0.3, "fail_first_attempts": 5, "fail_with": "permanent"}],
        config={"retry": {"max_attempts": 1}, "failure_threshold": 0},
    )
    strict = await create(
        api,
        [{"seconds": 0}] * 3,
        config={"depends_on": {"batches": [failing], "on": "completed"}},
    )
    lenient = await create(
        api,
        [{"seconds": 0}] * 3,
        config={"depends_on": {"batches": [failing], "on": "finished"}},
    )
    assert (await wait_for(api, failing, ended))["status"] == "failed"
    cancelled = await wait_for(api, strict, ended)
    assert cancelled["status"] == "cancelled", cancelled
    assert cancelled["reason"] == f"dependency {failing} ended failed"
    assert cancelled["progress"]["completed"] == 0
    assert cancelled["progress"]["cancelled"] == 3
    ran = await wait_for(api, lenient, ended)
    assert ran["status"] == "completed", ran
    assert ran["progress"]["completed"] == 3


async def test_a_batch_none_of_whose_jobs_completed_ends_failed_with_the_reason(
    api: httpx.AsyncClient,
) -> None:
    """At the default failure threshold (1.0) a batch with failures ends
    `completed_with_errors` as long as some job completed; with none completed it is
    `failed`, saying why."""
    failing = {"seconds": 0, "fail_probability": 1, "fail_with": "permanent"}
    nothing_done = await create(api, [failing] * 3)
    some_done = await create(api, [failing, {"seconds": 0}])
    failed = await wait_for(api, nothing_done, ended)
    assert (failed["status"], failed["reason"]) == ("failed", "no job completed"), failed
    assert failed["progress"]["failed"] == 3
    partial = await wait_for(api, some_done, ended)
    assert partial["status"] == "completed_with_errors", partial
    assert (partial["progress"]["completed"], partial["progress"]["failed"]) == (1, 1)


async def other_tenant_headers(stack: Stack) -> dict[str, str]:
    key = f"bya_other_{uuid.uuid4().hex}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_url)
    try:
        await ApiKeyStore(client[stack.database]).ensure(
            key, tenant=f"other-{uuid.uuid4().hex[:8]}", user="olga", role="admin", name="t2"
        )
    finally:
        await client.close()
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: httpx.Response, status: int, *named: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    for name in named:
        assert name in problem["detail"], problem
    return problem


async def test_unknown_foreign_and_own_dependencies_are_refused(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    body = {"name": "dep", "job_type": "demo.sleep", "items": [{"seconds": 0}]}
    missing = "b_000000000000deadbeef00"
    response = await api.post(
        "/v1/batches", json={**body, "config": {"depends_on": {"batches": [missing]}}}
    )
    problem = assert_problem(response, 422, missing)
    assert problem["dependency"] == missing
    foreign_headers = await other_tenant_headers(stack)
    foreign = await api.post("/v1/batches", json=body, headers=foreign_headers)
    assert foreign.status_code == 201, foreign.text
    foreign_id = foreign.json()["id"]
    response = await api.post(
        "/v1/batches", json={**body, "config": {"depends_on": {"batches": [foreign_id]}}}
    )
    assert_problem(response, 422, foreign_id)
    own = await api.post("/v1/batches", json={**body, "draft": True})
    own_id = own.json()["id"]
    response = await api.patch(
        f"/v1/batches/{own_id}", json={"config": {"depends_on": {"batches": [own_id]}}}
    )
    assert_problem(response, 422, own_id, "itself")
    # Nothing refused was stored: the draft's config is unchanged, no batch was created.
    assert (await api.get(f"/v1/batches/{own_id}")).json()["config"]["depends_on"] is None


async def test_a_cycle_through_drafts_is_refused_and_drafts_submit_in_order(
    api: httpx.AsyncClient,
) -> None:
    body = {"name": "chain", "job_type": "demo.sleep", "items": [{"seconds": 0}], "draft": True}
    a = (await api.post("/v1/batches", json=body)).json()["id"]
    b_body = {**body, "config": {"depends_on": {"batches": [a]}}}
    b = (await api.post("/v1/batches", json=b_body)).json()["id"]
    c_body = {**body, "config": {"depends_on": {"batches": [b]}}}
    c = (await api.post("/v1/batches", json=c_body)).json()["id"]
    response = await api.patch(
        f"/v1/batches/{a}", json={"config": {"depends_on": {"batches": [c]}}}
    )
    problem = assert_problem(response, 422, a, b, c)
    assert problem["type"] == "/problems/dependency-cycle"
    assert problem["cycle"] == [a, c, b, a]
    # A batch may only be submitted after the batches it depends on.
    response = await api.post(f"/v1/batches/{b}/submit")
    problem = assert_problem(response, 409, a)
    assert problem["dependency_status"] == "draft"
    response = await api.post(
        "/v1/batches",
        json={**b_body, "draft": False, "name": "inline"},
    )
    assert_problem(response, 409, a)
    for batch_id in (a, b, c):
        response = await api.post(f"/v1/batches/{batch_id}/submit")
        assert response.status_code == 202, response.text
    for batch_id in (a, b, c):
        assert (await wait_for(api, batch_id, ended))["status"] == "completed"
