"""The HTTP API against its own OpenAPI document, on a stack of its own (generated requests
create batches of hour-long jobs; they must not slow the shared e2e stack).

- Schemathesis generates requests for every operation with a valid admin key: no response
  is a server error, and every documented response matches its schema and content type.
- Every operation with a real resource of tenant A in its path, called with no key, with A's
  viewer key (writes) and with tenant B's admin key: no success at all — nothing is written
  and nothing of A's is read."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stack_support import Stack, isolated_stack
from tenancy import other_tenant_admin, registered_key

from contracts.catalog import ABSTRACT
from contracts.events import ALL_EVENTS

pytestmark = pytest.mark.e2e
STREAMS = ("/v1/events", "/v1/batches/{batch_id}/events")
# POSTs that only compute an answer and change nothing: a viewer may call them.
READ_ONLY_POSTS = ("/v1/library/consolidations/plan",)


@pytest.fixture(scope="module")
def own_stack(kafka_bootstrap: str, mongodb_server: str) -> Iterator[Stack]:
    # No per-key rate limit here: the fuzzer spends the admin key's bucket in a burst, and
    # the second test must reach the API at once with the same key (429s are tested in
    # test_guards_and_audit.py).
    with isolated_stack(
        "contract",
        kafka_bootstrap,
        mongodb_server,
        executors=1,
        extra_env={"BATCHYARD_API_RATE_LIMIT_PER_S": "0"},
    ) as stack:
        yield stack


@pytest.mark.timeout(900)
def test_generated_requests_meet_no_server_error_and_no_schema_violation(
    own_stack: Stack,
) -> None:
    st = Path(sys.executable).parent / "st"
    command = [
        str(st),
        "run",
        f"{own_stack.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {own_stack.admin_key}",
        "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "8",
        "--workers",
        "2",
        "--exclude-path-regex",
        "/events$",  # server-sent streams never end
        # Generated imports fill the library with ~20,000 templates, and FerretDB v1 then
        # takes over 30 s to scan them for a filtered listing or a consolidation plan (a known
        # limit, see docs/architecture.md). Imports are tested in tests/e2e/test_template_library.py.
        "--exclude-path",
        "/v1/library/templates/import",
        "--request-timeout",
        "30",
        "--seed",
        "20261123",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    (own_stack.log_dir / "schemathesis.txt").write_text(result.stdout + result.stderr)
    out = result.stdout
    shown = out if len(out) < 16_000 else out[:8_000] + "\n[...]\n" + out[-8_000:]
    assert result.returncode == 0, shown + result.stderr[-2_000:]


async def test_no_key_a_viewer_and_another_tenant_change_and_read_nothing(
    own_stack: Stack,
) -> None:
    # A key of its own: the fuzzer may well have revoked the stack's admin key (an admin may).
    admin = await registered_key(own_stack, tenant="default", user="ada", role="admin")
    async with httpx.AsyncClient(base_url=own_stack.url, headers=auth(admin), timeout=30) as api:
        ids = await resources(api)
        viewer = (await api.post("/v1/keys", json={"name": "v", "role": "viewer"})).json()
        foreign = await other_tenant_admin(own_stack)
        operations = (await api.get("/openapi.json")).json()["paths"]
        anonymous: list[str] = []
        viewer_wrote: list[str] = []
        foreign_got: list[str] = []
        async with httpx.AsyncClient(base_url=own_stack.url, timeout=30) as bare:
            for template, methods in operations.items():
                if template in STREAMS or not template.startswith("/v1/"):
                    continue
                path = fill(template, ids)
                for method in methods:
                    call = f"{method.upper()} {path}"
                    body = {} if method in ("post", "patch", "put") else None
                    response = await bare.request(method, path, json=body)
                    if response.status_code != 401:
                        anonymous.append(f"{call} → {response.status_code}")
                    if method != "get" and template not in READ_ONLY_POSTS:
                        response = await bare.request(
                            method, path, json=body, headers=auth(viewer["key"])
                        )
                        if response.is_success:
                            viewer_wrote.append(f"{call} → {response.status_code}")
                    if "{" in template:
                        response = await bare.request(
                            method, path, json=body, headers=auth(foreign)
                        )
                        if response.is_success:
                            foreign_got.append(f"{call} → {response.status_code}")
            # Listings of the other tenant show none of A's resources.
            for listing in ("/v1/batches", "/v1/templates", "/v1/schedules", "/v1/keys"):
                listed = (await bare.get(listing, headers=auth(foreign))).text
                for resource_id in ids.values():
                    if resource_id in listed:
                        foreign_got.append(f"GET {listing} lists {resource_id}")
    assert anonymous == [], "answered without a key"
    assert viewer_wrote == [], "a viewer changed something"
    assert foreign_got == [], "another tenant reached tenant A's resources"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def fill(template: str, ids: dict[str, str]) -> str:
    """A path of `template` naming tenant A's real resources."""
    path = template
    if template.startswith("/v1/library/"):
        path = path.replace("{template_id}", ids["library_template"])
    return (
        path.replace("{batch_id}", ids["batch"])
        .replace("{job_id}", f"{ids['batch']}.0")
        .replace("{action}", "cancel")
        .replace("{template_id}", ids["template"])
        .replace("{schedule_id}", ids["schedule"])
        .replace("{key_id}", ids["key"])
        .replace("{conflict_id}", "c_none")
    )


async def resources(api: httpx.AsyncClient) -> dict[str, str]:
    """One of each kind of resource in tenant A."""
    batch = await api.post(
        "/v1/batches",
        json={"name": "a's", "job_type": "demo.sleep", "items": [{"seconds": 0}] * 2},
    )
    template = await api.post(
        "/v1/templates", json={"name": "a's", "spec": {"job_type": "demo.sleep"}}
    )
    schedule = await api.post(
        "/v1/schedules",
        json={
            "name": "a's",
            "cron": "0 3 1 1 *",
            "spec": {"job_type": "demo.sleep", "items": [{}]},
        },
    )
    library = await api.post(
        "/v1/library/templates",
        json={"name": "a's", "category": "c", "body": "hello"},
    )
    key = await api.post("/v1/keys", json={"name": "a's", "role": "operator"})
    made: dict[str, Any] = {
        "batch": batch,
        "template": template,
        "schedule": schedule,
        "library_template": library,
        "key": key,
    }
    for name, response in made.items():
        assert response.status_code == 201, (name, response.text)
    return {name: str(response.json()["id"]) for name, response in made.items()}


async def test_the_events_are_documented_in_asyncapi(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        response = await client.get("/asyncapi")
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"].startswith("3.")
    messages = {m.split(":")[0] for m in document["components"]["messages"]}
    assert messages == {e.TYPE for e in ALL_EVENTS if e not in ABSTRACT}
    addresses = {c["address"] for c in document["channels"].values()}
    assert f"{stack.prefix}batchyard.batch.events" in addresses
    assert all(a.startswith(stack.prefix) for a in addresses)
    completed = document["components"]["schemas"]["BatchCompletedMessage"]
    assert {"type", "event_id", "data"} <= set(completed["properties"])
    # Consumers ignore unknown fields at every depth (docs/events/), so no schema forbids them:
    # `config` in BatchCreated did, so a producer adding a field to it looked like a breach.
    assert '"additionalProperties": false' not in json.dumps(document)
    assert "Webhook" in document["components"]["schemas"]
