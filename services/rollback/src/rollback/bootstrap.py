"""The rollback service's composition root."""

from __future__ import annotations

import os
from collections.abc import Sequence

from fastapi import FastAPI

from jobkit import JobType, Resources, discover_job_types
from rollback.adapters import metrics
from rollback.adapters.backups import MongoBackups, MongoPlans, ReadModelBatches
from rollback.adapters.queue import MongoQueue
from rollback.handlers.rollbacks import Rollbacks
from rollback.handlers.runner import Runner, instance_name
from servicekit.consume import Decoded, subscribe_batches
from servicekit.deadletter import DeadLetters
from servicekit.kafka import make_broker
from servicekit.publisher import EventPublisher, KafkaEventPublisher, ObservedPublisher
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.store import connect_store

NAME = "rollback"


def bootstrap(
    settings: ServiceSettings,
    *,
    publisher: EventPublisher | None = None,
    job_types: dict[str, JobType] | None = None,
) -> tuple[FastAPI, Rollbacks]:
    broker = make_broker(settings.kafka_bootstrap_servers, client_id=NAME)
    db = connect_store(settings.mongodb_url, settings.database_name, NAME)
    runtime = ServiceRuntime(NAME, settings, broker, db)
    topics = settings.topics
    rollbacks = Rollbacks(
        backups=MongoBackups(db),
        publisher=ObservedPublisher(publisher or KafkaEventPublisher(broker), metrics.observe),
        topics=topics,
        batches=ReadModelBatches(db),
        plans=MongoPlans(db),
        job_types=job_types if job_types is not None else discover_job_types(),
        queue=MongoQueue(db),
    )
    runner = Runner(
        rollbacks.queue, rollbacks.run, rollbacks.give_up, instance_name(settings.http_port)
    )
    rollbacks.on_queued = runner.wake

    async def setup_job_types() -> None:
        """The job types' compensate hooks need the store before the first request."""
        resources = Resources.from_environ(db, os.environ)
        for job_type in rollbacks.job_types.values():
            await job_type.setup(resources)

    async def handle(items: Sequence[Decoded]) -> None:
        await rollbacks.handle(items)

    runtime.before_start(setup_job_types)
    runtime.background(runner.serve)  # queued rollbacks, those of a stopped instance too
    subscribe_batches(
        broker,
        [topics.batch_commands, topics.retention],  # requests; deleted batches
        group_id=f"{topics.prefix}rollback",
        handler=handle,
        dead_letters=DeadLetters(broker, topics.dead_letter, NAME),
        max_records=50,
    )
    return runtime.app(title="Batchyard rollback"), rollbacks
