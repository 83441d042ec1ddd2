"""A user's view of the metrics: after a small batch (with a retried failure and a poison
message) every service's /metrics shows what happened, and every metric the Grafana dashboards
and the alert rules use exists on the running stack."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from promql_names import used_metrics
from stack_support import Stack

pytestmark = pytest.mark.e2e

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}
Samples = dict[str, list[tuple[dict[str, str], float]]]


def exported(text: str) -> tuple[set[str], Samples]:
    """Names a /metrics page declares (declared families count even before their first
    sample) and its samples by name."""
    names: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ())}
        for sample in family.samples:
            names.add(sample.name)
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return names, samples


def scrape(stack: Stack) -> dict[str, tuple[set[str], Samples]]:
    ports = {
        "batch-api": stack.ports.api,
        "scheduler": stack.ports.scheduler,
        "rollback": stack.ports.rollback,
        "reporter": stack.ports.reporter,
        **{f"executor-{i + 1}": p for i, p in enumerate(stack.ports.executor_ports)},
    }
    pages = {}
    for service, port in ports.items():
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert response.status_code == 200, service
        assert response.headers["content-type"].startswith("text/plain"), service
        pages[service] = exported(response.text)
    return pages


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v for got, v in samples.get(name, []) if all(got.get(k) == x for k, x in labels.items())
    )


async def test_metrics_show_a_batch_and_cover_every_dashboard_and_alert(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    response = await api.post(
        "/v1/batches",
        json={
            "name": "metrics",
            "job_type": "demo.sleep",
            "items": [{"seconds": 0.01}] * 5 + [{"fail_first_attempts": 1}],
            "config": {"retry": {"backoff_initial_s": 0, "backoff_max_s": 0}},
        },
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]

    def commands_lag(samples: Samples) -> float:
        return value(
            samples,
            "batchyard_consumer_lag_messages",
            group=f"{stack.prefix}scheduler",
            topic=f"{stack.prefix}batchyard.batch.commands",
        )

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:  # a poison command: every consumer of batch.commands dead-letters it
        await producer.send_and_wait(
            f"{stack.prefix}batchyard.batch.commands", b"{not json", key=b"poison"
        )
    finally:
        await producer.stop()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = (await api.get(f"/v1/batches/{batch_id}")).json()
        if body["status"] == "completed":
            break
        await asyncio.sleep(0.5)
    assert body["status"] == "completed", body

    # counters and gauges settle a moment after the read model; lag is measured every 5 s
    deadline = time.monotonic() + 30
    while True:
        pages = scrape(stack)
        scheduler = pages["scheduler"][1]
        executors = [pages[s][1] for s in pages if s.startswith("executor-")]
        done = (
            sum(
                value(e, "batchyard_jobs_completed_total", job_type="demo.sleep") for e in executors
            )
            >= 6
            and value(scheduler, "batchyard_batches_finished_total", status="completed") >= 1
            and value(scheduler, "batchyard_dead_letters_total") >= 1
            and commands_lag(scheduler) == 0
            and "batchyard_consumer_lag_messages" in pages["executor-1"][1]
        )
        if done or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)

    # what a user watching this batch sees
    assert (
        sum(value(e, "batchyard_jobs_started_total", job_type="demo.sleep") for e in executors) >= 7
    )
    assert (
        sum(value(e, "batchyard_jobs_completed_total", job_type="demo.sleep") for e in executors)
        >= 6
    )
    assert (
        sum(
            value(
                e, "batchyard_jobs_failed_total", job_type="demo.sleep", error_class="DemoFailure"
            )
            for e in executors
        )
        >= 1
    )
    assert value(scheduler, "batchyard_jobs_retried_total", job_type="demo.sleep") >= 1
    assert value(scheduler, "batchyard_batches_finished_total", status="completed") >= 1
    assert value(scheduler, "batchyard_scheduler_leader") == 1
    assert value(scheduler, "batchyard_scheduler_executors") == len(executors)
    assert value(scheduler, "batchyard_scheduler_decision_seconds_count") > 0
    # lag is measured per group and topic; the commands (no new ones) are all consumed
    lag_topics = {
        labels["topic"]
        for labels, _ in scheduler["batchyard_consumer_lag_messages"]
        if labels["group"] == f"{stack.prefix}scheduler"
    }
    assert lag_topics == {
        f"{stack.prefix}batchyard.{t}"
        for t in ("batch.commands", "job.events", "executor.heartbeats", "rollback.events")
    }
    assert commands_lag(scheduler) == 0
    for service in ("scheduler", "reporter", "rollback"):
        assert (
            value(
                pages[service][1],
                "batchyard_dead_letters_total",
                service=service,
                source_topic=f"{stack.prefix}batchyard.batch.commands",
            )
            >= 1
        ), service
    reporter = pages["reporter"][1]
    assert value(reporter, "batchyard_projection_lag_seconds_count") > 0
    assert value(reporter, "batchyard_reports_ready_total", status="completed") >= 1
    api_samples = pages["batch-api"][1]
    assert (
        value(
            api_samples,
            "batchyard_http_request_duration_seconds_count",
            route="/v1/batches/{batch_id}",
            method="GET",
            status="200",
        )
        >= 1
    )
    assert value(api_samples, "batchyard_batches_created_total", job_type="demo.sleep") >= 1
    assert (
        value(
            api_samples,
            "faststream_published_messages_total",
            destination=f"{stack.prefix}batchyard.batch.commands",
        )
        >= 3
    )

    # every metric a dashboard or an alert uses is exported by some service
    everywhere = set().union(*(names for names, _ in pages.values()))
    missing = {
        metric: sorted(where)
        for metric, where in used_metrics().items()
        if metric not in everywhere
    }
    assert missing == {}
    assert len(used_metrics()) > 20  # the scan found the queries
