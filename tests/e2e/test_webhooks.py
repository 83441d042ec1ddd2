"""Webhooks on the real stack: a batch's notices reach a local receiver signed with the
tenant's secret, failed attempts are retried with backoff until delivered, a 4xx is not
retried, a private target that is not allow-listed is never called, every delivery is
listed with its attempts, and a deadline at risk or missed is told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from jobs_support import wait_for_status
from webhook_support import Receiver, receiving

from servicekit.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, verify

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


async def settled_deliveries(
    api: httpx.AsyncClient, batch_id: str, expected: int, within_s: float = 60
) -> list[dict[str, Any]]:
    """The batch's deliveries once `expected` of them exist and none is pending."""
    deadline = time.monotonic() + within_s
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = await api.get(f"/v1/batches/{batch_id}/webhooks")
        assert response.status_code == 200, response.text
        found = response.json()
        if len(found) >= expected and all(d["status"] != "pending" for d in found):
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"deliveries did not settle: {found}")


async def test_notices_are_signed_retried_and_listed(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    secret_response = await api.get("/v1/webhooks/secret")
    assert secret_response.status_code == 200, secret_response.text
    secret = secret_response.json()["secret"]
    hooks = [
        {
            "url": receiver.url("flaky", fail=2, status=503),
            "on_start": True,
            "progress_every_percent": 50,
        },
        {"url": receiver.url("refusing", fail=100, status=400), "on_error": False},
        # loopback, but not the allow-listed 127.0.0.1: never called
        {"url": f"http://127.0.0.2:{receiver.port}/hook/private", "on_error": False},
    ]
    items = [{"seconds": 0.3} for _ in range(10)]
    items[3] = {"seconds": 0.1, "fail_probability": 1, "fail_with": "permanent"}
    created = await api.post(
        "/v1/batches",
        json={
            "name": "notify me",
            "job_type": "demo.sleep",
            "items": items,
            "config": {"max_concurrent_jobs": 1, "notifications": hooks},
        },
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    await wait_for_status(api, batch_id, {"completed_with_errors"}, 120)

    # started, the 50 % mark, the first error and the end, for the first hook; only the end
    # for the other two
    deliveries = await settled_deliveries(api, batch_id, 6)
    by_hook: dict[int, list[dict[str, Any]]] = {}
    for d in deliveries:
        by_hook.setdefault(d["hook"], []).append(d)
    flaky = {d["event"]: d for d in by_hook[0]}
    assert sorted(flaky) == ["batch.error", "batch.finished", "batch.progress", "batch.started"]
    assert all(d["status"] == "delivered" for d in by_hook[0]), by_hook[0]
    # the receiver refused the first two attempts (503): exactly two extra attempts in all
    assert sum(d["attempts"] for d in by_hook[0]) == len(by_hook[0]) + 2
    assert flaky["batch.finished"]["payload"]["batch"]["status"] == "completed_with_errors"
    assert flaky["batch.finished"]["payload"]["batch"]["counts"]["failed"] == 1
    assert flaky["batch.progress"]["payload"]["batch"]["percent"] >= 50

    [refused] = by_hook[1]
    assert (refused["event"], refused["status"], refused["attempts"]) == (
        "batch.finished",
        "failed",
        1,
    )
    assert refused["last_status_code"] == 400
    [private] = by_hook[2]
    assert (private["status"], private["attempts"]) == ("failed", 1)
    assert "non-public" in private["last_error"]
    assert receiver.hits["private"] == 0

    # what the receiver got: every notice signed with the tenant's secret, named, and the
    # same delivery id on each retry
    with receiver.lock:
        received = list(receiver.received)
    flaky_got = [(h, body, status) for name, h, body, status in received if name == "flaky"]
    assert len(flaky_got) == sum(d["attempts"] for d in by_hook[0])
    for headers, body, _ in flaky_got:
        assert verify(secret, body, headers[SIGNATURE_HEADER]), headers
        assert not verify("whsec_wrong", body, headers[SIGNATURE_HEADER])
        notice = orjson.loads(body)
        assert notice["delivery_id"] == headers[DELIVERY_HEADER]
        assert notice["event"] == headers[EVENT_HEADER]
        assert notice["batch"]["id"] == batch_id
    delivered = [h[DELIVERY_HEADER] for h, _, status in flaky_got if status == 204]
    assert sorted(delivered) == sorted(d["id"] for d in by_hook[0])


async def test_bad_webhooks_are_refused_at_creation(api: httpx.AsyncClient) -> None:
    for hook, field in (
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": "https://example.org/x", "progress_every_percent": 0}, "progress_every_percent"),
        ({"url": "https://example.org/x", "on_finish": True}, "on_finish"),
    ):
        response = await api.post(
            "/v1/batches",
            json={
                "name": "bad hook",
                "job_type": "demo.sleep",
                "items": [{}],
                "config": {"notifications": [hook]},
            },
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text
    listing = await api.get("/v1/batches", params={"q": "bad hook"})
    assert listing.status_code == 200
    assert [b for b in listing.json()["items"] if b["name"] == "bad hook"] == []


async def test_only_admins_read_the_secret(api: httpx.AsyncClient) -> None:
    made = await api.post("/v1/keys", json={"name": "watcher", "role": "viewer"})
    assert made.status_code == 201, made.text
    viewer = {"Authorization": f"Bearer {made.json()['key']}"}
    response = await api.get("/v1/webhooks/secret", headers=viewer)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_deadline_at_risk_and_missed_are_told_to_the_hooks(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    # Twenty half-second jobs one at a time need ten seconds; the deadline is in two.
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    created = await api.post(
        "/v1/batches",
        json={
            "name": "late",
            "job_type": "demo.sleep",
            "items": [{"seconds": 0.5}] * 20,
            "config": {
                "max_concurrent_jobs": 1,
                "deadline": deadline.isoformat(),
                "on_deadline_missed": "notify",
                "notifications": [{"url": receiver.url("late"), "on_complete": False}],
            },
        },
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    deliveries = await settled_deliveries(api, batch_id, 2)
    by_event = {d["event"]: d for d in deliveries}
    assert sorted(by_event) == ["batch.deadline_at_risk", "batch.deadline_missed"]
    assert all(d["status"] == "delivered" for d in deliveries), deliveries
    missed = by_event["batch.deadline_missed"]["payload"]
    assert missed["batch"] == {"id": batch_id, "name": "late"}
    assert missed["deadline"]["action"] == "notify"
    at_risk = by_event["batch.deadline_at_risk"]["payload"]["deadline"]
    assert datetime.fromisoformat(at_risk["predicted_finish"]) > deadline
    # `notify` keeps the batch running
    batch = (await api.get(f"/v1/batches/{batch_id}")).json()
    assert batch["status"] == "running", batch
    await api.post(f"/v1/batches/{batch_id}/actions/cancel")
    await wait_for_status(api, batch_id, {"cancelled"}, 60)
