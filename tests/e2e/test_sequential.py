"""Sequential batches and skipped jobs over HTTP and the CLI on the real stack: a sequential
batch's jobs run one at a time in item order; with `stop_on_error` the first job that fails
for good stops it, the jobs after it are `skipped` (counted and listed as such), and a retry
of the batch runs the failed job and then the skipped ones, still in order. A job type that
has nothing to do for an item (`SkipJob`) ends its job `skipped` with its reason, and a retry
leaves it so."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from csv import reader
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import Cli, cli_env, created_id, wait_status
from jobs_support import wait_for_status
from stack_support import Stack

pytestmark = pytest.mark.e2e

FAILING = 2  # the job whose first attempt fails for good


async def settled_jobs(
    api: httpx.AsyncClient, batch_id: str, expected: list[str], within_s: float = 30
) -> list[dict[str, Any]]:
    """The batch's jobs once their statuses read `expected` (job views converge a moment
    after the batch view)."""
    deadline = time.monotonic() + within_s
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = await api.get(f"/v1/batches/{batch_id}/jobs")
        assert response.status_code == 200, response.text
        jobs = response.json()["items"]
        if [j["status"] for j in jobs] == expected:
            return jobs
        await asyncio.sleep(0.2)
    raise AssertionError(f"jobs read {[j['status'] for j in jobs]}, not {expected}")


def at(job: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(job[field])


def one_after_another(jobs: list[dict[str, Any]]) -> None:
    for before, after in itertools.pairwise(jobs):
        assert at(after, "started_at") >= at(before, "finished_at"), (
            f"job {after['index']} started before job {before['index']} had finished"
        )


async def test_a_sequential_batch_runs_in_order_and_skips_what_follows_a_failure(
    api: httpx.AsyncClient,
) -> None:
    items: list[dict[str, Any]] = [{"seconds": 0.3} for _ in range(6)]
    items[FAILING] |= {"fail_first_attempts": 1, "fail_with": "permanent"}
    body = {
        "name": "in order",
        "job_type": "demo.sleep",
        "items": items,
        "config": {"execution": "sequential", "max_concurrent_jobs": 10, "stop_on_error": True},
    }
    r = await api.post("/v1/batches", json=body)
    assert r.status_code == 201, r.text
    batch = r.json()
    batch_id = batch["id"]
    assert batch["config"]["execution"] == "sequential"
    assert batch["config"]["max_concurrent_jobs"] == 1  # one at a time, whatever was sent

    failed = await wait_for_status(api, batch_id, {"failed", "completed"}, within_s=60)
    assert failed["status"] == "failed", failed
    counts = failed["progress"]
    assert (counts["completed"], counts["failed"]) == (2, 1), counts
    assert (counts["skipped"], counts["cancelled"]) == (3, 0), counts
    jobs = await settled_jobs(api, batch_id, ["completed"] * 2 + ["failed"] + ["skipped"] * 3)
    one_after_another(jobs[: FAILING + 1])
    assert all(j["started_at"] is None for j in jobs[FAILING + 1 :])
    listed = (await api.get(f"/v1/batches/{batch_id}/jobs", params={"status": "skipped"})).json()
    assert [j["index"] for j in listed["items"]] == [3, 4, 5]
    assert listed["items"][0]["skip_reason"].startswith("not started: the batch stopped")
    csv = (await api.get(f"/v1/batches/{batch_id}/report", params={"format": "csv"})).text
    rows = list(reader(io.StringIO(csv)))
    assert rows[0][-1] == "skip_reason"
    assert [r[2] for r in rows[1:]] == ["completed"] * 2 + ["failed"] + ["skipped"] * 3
    assert rows[4][-1].startswith("not started: the batch stopped")

    r = await api.post(f"/v1/batches/{batch_id}/actions/retry")
    assert r.status_code == 202, r.text
    # (it reads `failed` until the scheduler has taken the retry)
    done = await wait_for_status(api, batch_id, {"completed"}, within_s=60)
    assert (done["progress"]["completed"], done["progress"]["skipped"]) == (6, 0)
    jobs = await settled_jobs(api, batch_id, ["completed"] * 6)
    assert jobs[FAILING]["attempt"] == 2
    one_after_another(jobs[FAILING:])  # the failed one again, then the skipped ones in order


async def test_a_job_its_job_type_skipped_says_why_and_a_retry_leaves_it(
    api: httpx.AsyncClient, stack: Stack, tmp_path: Path
) -> None:
    run = Cli(cli_env(stack, tmp_path))
    created = run(
        "create", "--name", "some skipped", "--job-type", "demo.sleep", "--sequential",
        "--item", '{"seconds": 0.1}',
        "--item", '{"skip_reason": "already done on Tuesday"}',
        "--item", '{"fail_first_attempts": 1, "fail_with": "permanent"}',
        "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    ended = wait_status(run, batch_id, {"completed", "completed_with_errors", "failed"})
    assert ended["status"] == "completed_with_errors", ended
    counts = ended["progress"]
    assert (counts["completed"], counts["skipped"], counts["failed"]) == (1, 1, 1)
    jobs = await settled_jobs(api, batch_id, ["completed", "skipped", "failed"])
    assert jobs[1]["skip_reason"] == "already done on Tuesday"
    assert jobs[1]["started_at"] is not None  # it ran, and found nothing to do
    assert jobs[1]["error"] is None
    assert jobs[0]["skip_reason"] is None

    shown = run("jobs", "show", f"{batch_id}.1")
    assert shown.returncode == 0, shown.stderr
    assert "skipped" in shown.stdout
    assert "already done on Tuesday" in shown.stdout
    listed = run("jobs", "list", batch_id)
    assert "already done on Tuesday" in listed.stdout

    r = await api.post(f"/v1/batches/{batch_id}/actions/retry")
    assert r.status_code == 202, r.text
    done = await wait_for_status(api, batch_id, {"completed"}, within_s=60)
    assert (done["progress"]["completed"], done["progress"]["skipped"]) == (2, 1)
    jobs = await settled_jobs(api, batch_id, ["completed", "skipped", "completed"])
    assert jobs[1]["attempt"] == 1  # not run again
