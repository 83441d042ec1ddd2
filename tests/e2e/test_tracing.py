"""One trace follows a batch from its HTTP request through every service and job.

The services run as separate processes on the real Kafka and store, each exporting its spans
over OTLP/HTTP (configured only by the standard OTEL_* variables) to a small in-memory
receiver in this test (tests/otlp_collector.py). Nothing is shared between the processes but
Kafka: a span can only find its parent in another service through the `traceparent` carried
in the event envelope, so the tree below proves the propagation end to end."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from otlp_collector import Collector, ReceivedSpan, otlp_collector
from stack_support import topic_prefix

from devstack import services
from devstack.services import ServicePorts

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def traced(kafka_bootstrap: str, mongodb_server: str) -> Iterator[tuple[str, str, Collector]]:
    """(API URL, admin key, collector) of a stack whose services export traces."""
    run_id = uuid.uuid4().hex[:8]
    base = ROOT / "artifacts" / f"e2e-trace-{run_id}"
    run_dir, log_dir = base / "run", base / "logs"
    run_dir.mkdir(parents=True)
    log_dir.mkdir(parents=True)
    admin_key = f"bya_trace_{uuid.uuid4().hex}"
    ports = ServicePorts.pick_free(1)
    with otlp_collector() as collector:
        try:
            services.start_services(
                run_dir=run_dir,
                log_dir=log_dir,
                venv_bin=Path(sys.executable).parent,
                kafka_bootstrap=kafka_bootstrap,
                mongodb_url=f"{mongodb_server}/byt_trace_{run_id}",
                admin_key=admin_key,
                executors=1,
                ports=ports,
                extra_env={
                    "BATCHYARD_TOPIC_PREFIX": topic_prefix("trace", run_id),
                    "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                    "OTEL_BSP_SCHEDULE_DELAY": "200",
                },
                timeout=120,
            )
            yield f"http://127.0.0.1:{ports.api}", admin_key, collector
        finally:
            services.stop_services(run_dir)


def _chain(spans: list[ReceivedSpan], leaf: ReceivedSpan) -> list[ReceivedSpan]:
    """`leaf` and its ancestors up to the root, leaf first."""
    by_id = {s.span_id: s for s in spans if s.trace_id == leaf.trace_id}
    chain = [leaf]
    while chain[-1].parent_id:
        parent = by_id.get(chain[-1].parent_id)
        assert parent is not None, f"parent of {chain[-1].name} ({chain[-1].service}) not received"
        chain.append(parent)
    return chain


def _ancestors_received(spans: list[ReceivedSpan], leaf: ReceivedSpan) -> bool:
    by_id = {s.span_id: s for s in spans if s.trace_id == leaf.trace_id}
    span: ReceivedSpan | None = leaf
    while span is not None and span.parent_id:
        span = by_id.get(span.parent_id)
    return span is not None


def _find(spans: list[ReceivedSpan], service: str, name: str, job_id: str) -> ReceivedSpan | None:
    for span in spans:
        if (
            span.service == service
            and span.name == name
            and span.attributes.get("batchyard.job_id") == job_id
        ):
            return span
    return None


def test_one_trace_follows_a_job_from_the_request_to_the_read_model(
    traced: tuple[str, str, Collector],
) -> None:
    url, admin_key, collector = traced
    response = httpx.post(
        f"{url}/v1/batches",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={"name": "traced", "job_type": "demo.sleep", "items": [{"seconds": 0.05}]},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    job_id = f"{batch_id}.0"

    def projected(spans: list[ReceivedSpan]) -> bool:
        # Each process exports its spans on its own schedule, so the reporter's span can come
        # before its parents from the executor: wait until the chain to the root is here too,
        # and the other spans looked for below.
        leaf = _find(spans, "reporter", "process JobCompleted", job_id)
        return (
            leaf is not None
            and _ancestors_received(spans, leaf)
            and _find(spans, "scheduler", "process JobCompleted", job_id) is not None
            and _find(spans, "executor", "process JobDispatched", job_id) is not None
            and any(s.service == "scheduler" and s.name == "publish BatchCompleted" for s in spans)
        )

    spans = collector.wait_for(projected, timeout=60)
    leaf = _find(spans, "reporter", "process JobCompleted", job_id)
    assert leaf is not None
    chain = _chain(spans, leaf)
    path = [(s.service, s.name, s.kind) for s in chain]

    # From the read model's projection back to the HTTP request, one hop per service.
    expected = [
        ("reporter", "process JobCompleted", "CONSUMER"),
        ("executor", "publish JobCompleted", "PRODUCER"),
        ("executor", "run demo.sleep", "INTERNAL"),
        ("scheduler", "publish JobDispatched", "PRODUCER"),
        ("batch-api", "publish BatchSubmitted", "PRODUCER"),
        ("batch-api", "POST /v1/batches", "SERVER"),
    ]
    assert path == expected, path
    assert chain[-1].parent_id == ""
    assert chain[3].attributes["batchyard.job_id"] == job_id
    assert chain[4].attributes["batchyard.batch_id"] == batch_id

    trace = [s for s in spans if s.trace_id == leaf.trace_id]
    # Every service took part in this one trace: the scheduler consumed the job's result,
    # the executor consumed its dispatch, and the scheduler's batch events joined it too.
    assert _find(trace, "scheduler", "process JobCompleted", job_id) is not None
    assert _find(trace, "executor", "process JobDispatched", job_id) is not None
    assert any(s.service == "scheduler" and s.name == "publish BatchCompleted" for s in trace)
    assert {s.service for s in trace} >= {"batch-api", "scheduler", "executor", "reporter"}
    # Heartbeats carry no trace context and start no trace of their own.
    assert not [s for s in spans if "ExecutorHeartbeat" in s.name]
