"""The executor's composition root."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence

from fastapi import FastAPI
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from executor.adapters import metrics
from executor.adapters.announce import announce_job_types
from executor.adapters.backups import BackupStore, MongoBackups
from executor.adapters.isolation import ProcessIsolation
from executor.handlers.runner import START_NOTICE_S, Executor
from jobkit import JobType, Resources, discover_job_types
from servicekit.consume import Decoded, subscribe_batches
from servicekit.deadletter import DeadLetters
from servicekit.kafka import make_broker
from servicekit.publisher import (
    CoalescingPublisher,
    EventPublisher,
    KafkaEventPublisher,
    ObservedPublisher,
)
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.store import connect_store

NAME = "executor"
DRAIN_MARGIN_S = 5.0  # leaving the consumer group, on top of the drain itself

log = logging.getLogger(__name__)


class ExecutorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BATCHYARD_EXECUTOR_", extra="ignore")

    http_port: int = Field(default=8010, validation_alias=AliasChoices("BATCHYARD_HTTP_PORT"))
    # Jobs at once. Inline jobs are tasks on the event loop (cheap: many wait on I/O), so
    # there are many; process-isolated jobs each take a worker process as well, and at most
    # `process_slots` of them run at once (docs/deploy.md, docs/performance.md).
    slots: int = Field(default=256, ge=1, le=10_000)
    process_slots: int = Field(default=64, ge=1, le=10_000)
    heartbeat_s: float = Field(default=1.0, gt=0)
    # A job still running this long after it began is announced by `JobStarted`; one that
    # ended sooner only by its outcome (0: every job is announced started).
    start_notice_ms: int = Field(default=round(START_NOTICE_S * 1000), ge=0, le=10_000)
    # How long a process-isolated job has to end after a cancel before its worker is killed.
    worker_grace_s: float = Field(default=5.0, ge=0, le=300)
    # At shutdown (SIGTERM): how long running jobs have to end before they are cancelled and
    # left to their leases. The process needs this plus a few seconds: Kubernetes'
    # terminationGracePeriodSeconds and Compose's stop_grace_period are set to 30 s.
    drain_s: float = Field(default=20.0, ge=0, le=3600)


def bootstrap(
    settings: ExecutorSettings,
    *,
    job_types: dict[str, JobType] | None = None,
    publisher: EventPublisher | None = None,
    backups: BackupStore | None = None,
) -> tuple[FastAPI, Executor]:
    executor_id = settings.instance_id or f"executor-{socket.gethostname()}-{os.getpid()}"
    broker = make_broker(settings.kafka_bootstrap_servers, client_id=executor_id)
    db = connect_store(settings.mongodb_url, settings.database_name, executor_id)
    runtime = ServiceRuntime(NAME, settings, broker, db)
    topics = settings.topics
    hosted = job_types if job_types is not None else discover_job_types()
    isolated = sorted({type(t).__module__ for t in hosted.values() if t.isolation == "process"})
    isolation = ProcessIsolation(isolated, grace_s=settings.worker_grace_s) if isolated else None
    executor = Executor(
        executor_id=executor_id,
        slots=settings.slots,
        process_slots=settings.process_slots,
        job_types=hosted,
        # jobs that end in the same turn of the event loop report in one publish
        publisher=CoalescingPublisher(
            ObservedPublisher(
                publisher or KafkaEventPublisher(broker),
                metrics.observer(lambda job_id: _job_type(executor, job_id)),
            )
        ),
        topics=topics,
        backups=backups or MongoBackups(db),
        isolation=isolation,
        start_notice_s=settings.start_notice_ms / 1000,
        on_started=metrics.count_started,
    )
    metrics.track(lambda: executor.slots, lambda: executor.slots_free)
    dead_letters = DeadLetters(broker, topics.dead_letter, executor_id, service=NAME)

    async def accept(items: Sequence[Decoded]) -> None:
        await executor.accept(items)

    async def control(items: Sequence[Decoded]) -> None:
        await executor.control(items)

    dispatches = subscribe_batches(
        broker,
        [topics.job_dispatch],
        group_id=f"{topics.prefix}executors",
        handler=accept,
        dead_letters=dead_letters,
        max_records=max(1, settings.slots),
    )
    subscribe_batches(
        broker,
        [topics.control],
        group_id=f"{topics.prefix}executor-control-{executor_id}",
        handler=control,
        dead_letters=dead_letters,
        from_beginning=False,
    )

    async def heartbeats() -> None:
        while True:
            await executor.publisher.publish([executor.heartbeat()])
            await asyncio.sleep(settings.heartbeat_s)

    async def setup_job_types() -> None:
        """Before the first dispatch is consumed: job types get the store and their settings."""
        resources = Resources.from_environ(db, os.environ)
        for job_type in executor.job_types.values():
            await job_type.setup(resources)

    async def announce() -> None:
        await announce_job_types(db, executor_id, executor.job_types)

    runtime.before_start(setup_job_types)
    if isolation is not None:

        async def start_isolation() -> None:
            """The fork server, before the first dispatch. If it cannot start, the executor
            still serves its inline job types; process-isolated jobs try again to start it."""
            try:
                await isolation.start()
            except Exception:
                log.exception("the worker fork server did not start")

        runtime.before_start(start_isolation)

    async def hand_over() -> None:
        """At shutdown: leave the dispatch consumer group first (other executors take its
        partitions at once, not after the session timeout), then let running jobs end."""
        executor.draining = True
        await dispatches.stop()
        running = len(executor.running)
        log.info("draining: %d job(s) running get up to %.0f s to end", running, settings.drain_s)
        began = asyncio.get_running_loop().time()
        await executor.drain(settings.drain_s)
        took = asyncio.get_running_loop().time() - began
        left = len(executor.running)
        log.info(
            "drained in %.1f s: %d job(s) ended, %d left to their leases",
            took,
            running - left,
            left,
        )

    runtime.on_connected(announce)
    runtime.on_stopping(hand_over, settings.drain_s + DRAIN_MARGIN_S)
    runtime.on_shutdown(executor.shutdown)
    if isolation is not None:
        runtime.on_shutdown(isolation.close)
    runtime.background(heartbeats)
    app = runtime.app(title=f"Batchyard executor {executor_id}")

    @app.get("/v1/executor", include_in_schema=False)
    async def describe() -> dict[str, object]:
        return {
            "executor_id": executor_id,
            "slots_total": executor.slots,
            "slots_free": executor.slots_free,
            "job_types": sorted(executor.job_types),
            "workers": dict(executor.isolation.pids) if executor.isolation else {},
        }

    return app, executor


def _job_type(executor: Executor, job_id: str) -> str | None:
    job = executor.running.get(job_id)
    return job.dispatch.job_type if job is not None else None
