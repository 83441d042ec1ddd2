"""Bad input gets a 4xx problem body and never reaches Kafka."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from kafka_support import read_all
from stack_support import Stack

from contracts.topics import Topics

pytestmark = pytest.mark.e2e

GOOD: dict[str, Any] = {"name": "x", "job_type": "demo.sleep", "items": [{"seconds": 0}]}


@pytest.mark.parametrize(
    ("body", "headers", "status", "kind"),
    [
        (b"{not json", {}, 400, "malformed-json"),
        ({**GOOD, "unknown": 1}, {}, 422, "invalid-request"),
        (
            {**GOOD, "config": {"max_concurrent_jobs": 1, "surprise": True}},
            {},
            422,
            "invalid-request",
        ),
        ({**GOOD, "job_type": "no.such.type"}, {}, 422, "unknown-job-type"),
        ({**GOOD, "items": []}, {}, 422, "invalid-request"),
        ({**GOOD, "items": [{"seconds": "soon"}]}, {}, 422, "invalid-items"),
        ({k: v for k, v in GOOD.items() if k != "name"}, {}, 422, "invalid-request"),
        # JSON may escape half a surrogate pair, which is no text that can be stored or sent
        # (it was a 500 in an item, where any string goes).
        (
            rb'{"name": "x", "job_type": "demo.sleep", "items": [{"error_class": "a\udbdc"}]}',
            {},
            422,
            "invalid-items",
        ),
        (
            rb'{"name": "x", "job_type": "demo.sleep", "items": [{}],'
            rb' "config": {"params": {"a": "\udbdc"}}}',
            {},
            422,
            "invalid-request",
        ),
        (GOOD, {"Authorization": ""}, 401, "unauthorized"),
        (GOOD, {"Authorization": "Bearer bya_wrong"}, 401, "unauthorized"),
    ],
)
async def test_bad_requests_get_a_problem(
    stack: Stack, body: Any, headers: dict[str, str], status: int, kind: str
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        send_headers = {**stack.headers, "Content-Type": "application/json", **headers}
        if send_headers.get("Authorization") == "":
            del send_headers["Authorization"]
        content = body if isinstance(body, bytes) else None
        response = await client.post(
            "/v1/batches", content=content, json=None if content else body, headers=send_headers
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == f"/problems/{kind}"
    assert problem["title"]
    assert problem["detail"]


async def test_rejected_requests_never_reach_kafka(
    stack: Stack, kafka_bootstrap: str, api: httpx.AsyncClient
) -> None:
    marker = "never-published-marker"
    r = await api.post("/v1/batches", json={**GOOD, "name": marker, "job_type": "nope"})
    assert r.status_code == 422
    accepted = await api.post("/v1/batches", json={**GOOD, "name": "accepted-after-the-refusal"})
    assert accepted.status_code == 201, accepted.text
    topics = Topics(stack.prefix)
    records = await read_all(kafka_bootstrap, topics, [topics.batch_commands])
    assert any(b"accepted-after-the-refusal" in (r.value or b"") for r in records)
    assert all(marker.encode() not in (r.value or b"") for r in records)


async def test_a_repeated_draft_creation_stays_a_draft(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    """A repeat by Idempotency-Key finishes publishing a batch that was submitted; a draft
    was published too, so the scheduler ran what its owner was still filling."""
    h = {"Idempotency-Key": "draft-key-1"}
    body = {**GOOD, "name": "still a draft", "draft": True}
    first = await api.post("/v1/batches", json=body, headers=h)
    assert first.status_code == 201, first.text
    again = await api.post("/v1/batches", json=body, headers=h)
    assert again.status_code == 200, again.text
    batch_id = again.json()["id"]
    assert (again.json()["status"], batch_id) == ("draft", first.json()["id"])
    topics = Topics(stack.prefix)
    records = await read_all(kafka_bootstrap, topics, [topics.batch_commands])
    assert not [r for r in records if batch_id.encode() in (r.value or b"")], "it was published"


async def test_unknown_batch_is_404(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/batches/b_doesnotexist")
    assert r.status_code == 404
    assert r.json()["type"] == "/problems/not-found"


async def test_idempotency_key(api: httpx.AsyncClient) -> None:
    h = {"Idempotency-Key": "same-key-1"}
    first = await api.post("/v1/batches", json=GOOD, headers=h)
    again = await api.post("/v1/batches", json=GOOD, headers=h)
    other = await api.post("/v1/batches", json={**GOOD, "name": "different"}, headers=h)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409


@pytest.mark.parametrize("priority", [-11924072, 0, 11])
async def test_a_consolidation_with_a_priority_out_of_range_is_refused(
    api: httpx.AsyncClient, priority: int
) -> None:
    """Found by the fuzzer: any integer went through to the batch, whose own check then
    failed as a 500 (after the manual backup was written)."""
    body = {"priority": priority, "backup_strategy": "manual", "filter": None}
    response = await api.post("/v1/library/consolidations", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/invalid-request"
    assert "priority" in problem["detail"] or "priority" in str(problem.get("errors"))
