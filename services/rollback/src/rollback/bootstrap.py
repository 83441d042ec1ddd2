"""The rollback service's composition root."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from rollback.adapters import metrics
from rollback.adapters.backups import MongoBackups
from rollback.handlers.rollbacks import Rollbacks
from servicekit.consume import Decoded, subscribe_batches
from servicekit.deadletter import DeadLetters
from servicekit.kafka import make_broker
from servicekit.publisher import EventPublisher, KafkaEventPublisher, ObservedPublisher
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.store import connect_store

NAME = "rollback"


def bootstrap(
    settings: ServiceSettings, *, publisher: EventPublisher | None = None
) -> tuple[FastAPI, Rollbacks]:
    broker = make_broker(settings.kafka_bootstrap_servers, client_id=NAME)
    db = connect_store(settings.mongodb_url, settings.database_name, NAME)
    runtime = ServiceRuntime(NAME, settings, broker, db)
    topics = settings.topics
    publisher = ObservedPublisher(publisher or KafkaEventPublisher(broker), metrics.observe)
    rollbacks = Rollbacks(MongoBackups(db), publisher, topics)

    async def handle(items: Sequence[Decoded]) -> None:
        await rollbacks.handle(items)

    subscribe_batches(
        broker,
        [topics.batch_commands],
        group_id=f"{topics.prefix}rollback",
        handler=handle,
        dead_letters=DeadLetters(broker, topics.dead_letter, NAME),
    )
    return runtime.app(title="Batchyard rollback"), rollbacks
