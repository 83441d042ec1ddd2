"""Server-sent events: a running batch's progress arrives in order, its failures as
`job_failed`, then the final state and `end`; the tenant-wide stream carries it too."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sse_support import sse_frames
from stack_support import Stack

pytestmark = pytest.mark.e2e


async def read_events(
    response: httpx.Response, until: str | None, limit_s: float
) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    async def read() -> None:
        async for name, body in sse_frames(response):
            events.append((name, body))
            if name == until:
                return

    await asyncio.wait_for(read(), limit_s)
    return events


async def test_progress_in_order_then_final_state_and_end(
    api: httpx.AsyncClient, stack: Stack
) -> None:
    items = [{"seconds": 0.2}] * 12 + [{"fail_first_attempts": 1}]
    config = {"max_concurrent_jobs": 2, "retry": {"max_attempts": 2, "backoff_initial_s": 0}}
    response = await api.post(
        "/v1/batches",
        json={"name": "live", "job_type": "demo.sleep", "items": items, "config": config},
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    async with (
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=None) as client,
        client.stream("GET", f"/v1/batches/{batch_id}/events") as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = await read_events(stream, "end", 90)

    names = [name for name, _ in events]
    assert names[0] == "progress"
    assert names[-1] == "end"
    progress = [data for name, data in events if name == "progress"]
    assert all(p["batch_id"] == batch_id for p in progress)
    seqs = [p["seq"] for p in progress]
    assert seqs == sorted(set(seqs)), seqs
    # the end names the seq of the snapshot that ended it: the newest
    assert events[-1][1] == {"batch_id": batch_id, "status": "completed", "seq": seqs[-1]}
    finished = [p["completed"] + p["failed"] for p in progress]
    assert finished == sorted(finished), finished
    assert len(progress) >= 3
    assert progress[-1]["status"] == "completed"
    assert progress[-1]["completed"] == 13
    assert progress[-1]["percent"] == 100.0
    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses[-1] == "completed"
    assert "running" in statuses or statuses[0] in ("queued", "running")
    failures = [data for name, data in events if name == "job_failed"]
    assert [f["job_id"] for f in failures] == [f"{batch_id}.12"]
    assert failures[0]["error"]["class"] == "DemoFailure"
    assert failures[0]["awaiting_decision"] is False  # an error, not a job parked for a person

    async with (
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=None) as client,
        client.stream("GET", f"/v1/batches/{batch_id}/events") as again,
    ):
        after = await read_events(again, "end", 10)
    # A finished batch's stream ends at once with its final state; if the read model still
    # lagged when it opened, the state it showed first comes before the final one.
    names_after = [name for name, _ in after]
    assert names_after[-3:] == ["progress", "status", "end"], names_after
    assert after[-3][1]["status"] == "completed"
    assert after[-3][1]["completed"] == 13


async def test_the_tenant_stream_carries_every_batch(api: httpx.AsyncClient, stack: Stack) -> None:
    async with (
        httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=None) as client,
        client.stream("GET", "/v1/events") as stream,
    ):
        assert stream.status_code == 200
        await asyncio.sleep(1.0)
        response = await api.post(
            "/v1/batches",
            json={"name": "live-all", "job_type": "demo.sleep", "items": [{"seconds": 0}] * 3},
        )
        batch_id = response.json()["id"]
        seen: list[dict[str, Any]] = []

        async def until_done() -> None:
            async for name, body in sse_frames(stream):
                if name == "progress" and body["batch_id"] == batch_id:
                    seen.append(body)
                    if body["status"] == "completed":
                        return

        await asyncio.wait_for(until_done(), 60)
    assert seen[-1]["completed"] == 3


async def test_streams_need_a_key_and_a_visible_batch(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        assert (await client.get("/v1/events")).status_code == 401
        missing = await client.get("/v1/batches/b_nope/events", headers=stack.headers)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
