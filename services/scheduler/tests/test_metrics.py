"""The scheduler's metrics: counters from what it publishes, gauges from its state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from scheduler_fakes import InMemorySchedulerStore

from contracts.codec import envelope_for
from contracts.events import (
    BatchCreated,
    BatchItemsAdded,
    BatchSubmitted,
    DispatchedJob,
    Event,
    ExecutorHeartbeat,
    JobCompleted,
    JobDispatched,
    JobFailed,
    JobsDispatched,
)
from contracts.topics import Topics
from contracts.vocabulary import BatchConfig, RetryPolicy
from scheduler.adapters import metrics
from scheduler.handlers.engine import Scheduler, SchedulerConfig
from servicekit.publisher import ObservedPublisher, Outgoing, RecordingPublisher

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Clock:
    t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


async def test_metrics_follow_a_batch() -> None:
    out = RecordingPublisher()
    clock = Clock()
    s = Scheduler(
        store=InMemorySchedulerStore(),
        publisher=out,
        topics=Topics(),
        config=SchedulerConfig(prefetch=0, progress_interval_s=0),
        clock=clock,
    )
    s.publisher = ObservedPublisher(
        out, metrics.observer(lambda b: s.batches[b].job_type if b in s.batches else None)
    )
    metrics.track(s, lambda: True)
    metrics.COLLECTOR.progress.clock = clock
    before = {
        "dispatched": value("batchyard_jobs_dispatched_total", job_type="metric.job"),
        "retried": value("batchyard_jobs_retried_total", job_type="metric.job"),
        "completed": value("batchyard_batches_finished_total", status="completed_with_errors"),
    }

    async def send(*events: Event) -> None:
        await s.handle([(envelope_for(e, producer="test"), e) for e in events])

    retry = RetryPolicy(max_attempts=2, backoff_initial_s=0, backoff_max_s=0)
    await send(
        BatchCreated(
            batch_id="bm",
            name="bm",
            job_type="metric.job",
            owner="u",
            config=BatchConfig(retry=retry),
            created_at=NOW,
        ),
        BatchItemsAdded(batch_id="bm", chunk=0, first_index=0, items=[{}, {}, {}]),
        BatchSubmitted(batch_id="bm", total_items=3, chunks=1),
        ExecutorHeartbeat(
            executor_id="e1", slots_total=2, slots_free=2, running=0, job_types=[], sent_at=NOW
        ),
    )
    await s.tick()
    assert (
        value("batchyard_jobs_dispatched_total", job_type="metric.job") == before["dispatched"] + 2
    )
    assert value("batchyard_batches", status="running") == 1
    assert value("batchyard_jobs_dispatched_unstarted") == 2
    assert value("batchyard_scheduler_executor_slots", state="total") == 2
    assert value("batchyard_scheduler_executors") == 1
    assert value("batchyard_scheduler_leader") == 1
    started_at = value(
        "batchyard_batch_last_progress_timestamp_seconds", batch_id="bm", status="running"
    )
    assert started_at == clock.t

    d = [JobDispatched.model_validate(m.envelope.data) for m in out.of_type("JobDispatched")]
    clock.t += 60
    await send(
        JobCompleted(
            job_id=d[0].job_id,
            batch_id="bm",
            attempt=1,
            executor_id="e1",
            started_at=NOW,
            finished_at=NOW,
            duration_ms=1,
        ),
        JobFailed(
            job_id=d[1].job_id,
            batch_id="bm",
            attempt=1,
            executor_id="e1",
            started_at=NOW,
            finished_at=NOW,
            duration_ms=1,
            error_class="Boom",
            error_message="b",
            retryable=True,
        ),
    )
    assert value("batchyard_jobs_retried_total", job_type="metric.job") == before["retried"] + 1
    # a job finished: the batch made progress at the clock's new time
    assert (
        value("batchyard_batch_last_progress_timestamp_seconds", batch_id="bm", status="running")
        == clock.t
    )

    for _ in range(20):  # run the rest, failing everything
        await send(
            ExecutorHeartbeat(
                executor_id="e1", slots_total=2, slots_free=2, running=0, job_types=[], sent_at=NOW
            )
        )
        await s.tick()
        pending = [
            JobDispatched.model_validate(m.envelope.data) for m in out.of_type("JobDispatched")
        ][len(d) :]
        d += pending
        await send(
            *[
                JobFailed(
                    job_id=p.job_id,
                    batch_id="bm",
                    attempt=p.attempt,
                    executor_id="e1",
                    started_at=NOW,
                    finished_at=NOW,
                    duration_ms=1,
                    error_class="Boom",
                    error_message="b",
                    retryable=False,
                )
                for p in pending
            ]
        )
        if "bm" not in s.batches:
            break
    assert "bm" not in s.batches
    assert (
        value("batchyard_batches_finished_total", status="completed_with_errors")
        == before["completed"] + 1
    )
    # a finished batch leaves the per-batch series
    assert (
        REGISTRY.get_sample_value(
            "batchyard_batch_last_progress_timestamp_seconds",
            {"batch_id": "bm", "status": "running"},
        )
        is None
    )
    assert value("batchyard_batches", status="running") == 0


def test_every_job_of_a_grouped_dispatch_counts_as_dispatched() -> None:
    group = JobsDispatched(
        batch_id="bg",
        job_type="metric.grouped",
        jobs=[DispatchedJob(job_id=f"bg.{i}", index=i, attempt=1, item={}) for i in range(3)],
        timeout_s=1,
        lease_s=1,
        dispatched_at=NOW,
    )
    before = value("batchyard_jobs_dispatched_total", job_type="metric.grouped")
    observe = metrics.observer(lambda b: None)
    observe([Outgoing("t", "bg.0", envelope_for(group, producer="test"))])
    assert value("batchyard_jobs_dispatched_total", job_type="metric.grouped") == before + 3
