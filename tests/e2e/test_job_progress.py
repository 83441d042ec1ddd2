"""What a running job reports of its progress (`ctx.report_progress`) reaches the API: the
job shows its latest report while it runs, and none once it has ended; its batch has an ETA
before any job ended."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from jobs_support import wait_for_status

pytestmark = pytest.mark.e2e

STEPS = 4


async def test_a_running_job_shows_its_latest_progress(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/v1/batches",
        json={
            "name": "progress",
            "job_type": "demo.sleep",
            "items": [{"seconds": 4, "progress_steps": STEPS}],
        },
    )
    assert r.status_code == 201, r.text
    batch_id = r.json()["id"]
    url = f"/v1/batches/{batch_id}/jobs/{batch_id}.0"

    seen: list[dict[str, Any]] = []
    etas: list[float] = []  # the batch's, while its only job runs
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = (await api.get(url)).json()
        if job["status"] == "completed":
            break
        if job.get("progress") and job["progress"] not in seen:
            seen.append(job["progress"])
        batch = (await api.get(f"/v1/batches/{batch_id}")).json()
        if batch["status"] == "running" and batch["progress"].get("eta_s") is not None:
            etas.append(batch["progress"]["eta_s"])
        await asyncio.sleep(0.2)
    assert seen, "the running job never showed its progress"
    # no job has ended, yet the batch has an ETA: its job's own reports count
    assert etas, "the batch had no ETA while its job ran"
    assert all(0 <= eta <= 20 for eta in etas), etas
    for report in seen:
        step = re.fullmatch(rf"step (\d) of {STEPS}", report["message"])
        assert step, report
        assert report["percent"] == pytest.approx(100 * int(step[1]) / STEPS)
    percents = [report["percent"] for report in seen]
    assert percents == sorted(percents), "an older report replaced a newer one"

    await wait_for_status(api, batch_id, {"completed"}, within_s=30)
    deadline = time.monotonic() + 10
    job = (await api.get(url)).json()
    while job["status"] != "completed" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        job = (await api.get(url)).json()
    assert job["status"] == "completed"
    assert job["progress"] is None, "an ended job still shows progress"
    listed = (await api.get(f"/v1/batches/{batch_id}/jobs")).json()["items"]
    assert listed[0]["progress"] is None
