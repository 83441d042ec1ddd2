"""Job types as plugins: the example package in examples/ (installed by `make install`) is
discovered by the executors, listed by the API and runs batches like a built-in."""

from __future__ import annotations

import httpx
import pytest
from jobs_support import wait_for_status
from readmodels import settled_job_views
from stack_support import Stack

pytestmark = pytest.mark.e2e


async def test_the_example_plugin_is_listed_with_its_schema(api: httpx.AsyncClient) -> None:
    listed = {t["name"]: t for t in (await api.get("/v1/job-types")).json()}
    assert "hello.greet" in listed
    assert listed["hello.greet"]["input_schema"]["required"] == ["name"]
    assert "templates.consolidate" in listed or "demo.sleep" in listed


async def test_the_example_plugin_runs_a_batch(api: httpx.AsyncClient, stack: Stack) -> None:
    response = await api.post(
        "/v1/batches",
        json={
            "name": "greetings",
            "job_type": "hello.greet",
            "items": [{"name": "Ada", "times": 2}, {"name": "Grace"}, {"name": "nobody"}],
        },
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    done = await wait_for_status(api, batch_id, {"completed_with_errors"}, 60)
    assert done["progress"]["completed"] == 2
    # The batch's view and its job views are projected from different topics: wait until
    # every job view shows its final state too.
    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == 3 and all(v["status"] in ("completed", "failed") for v in vs),
    )
    by_index = {v["index"]: v for v in views}
    assert by_index[0]["output"] == {"greeting": "Hello, Ada! Hello, Ada!", "count": 2}
    assert by_index[1]["output"] == {"greeting": "Hello, Grace!", "count": 1}
    assert by_index[2]["error_class"] == "NobodyToGreet"
    assert by_index[2]["retryable"] is False


async def test_items_that_break_the_plugin_schema_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/batches",
        json={"name": "bad", "job_type": "hello.greet", "items": [{"name": "x", "times": 0}]},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
