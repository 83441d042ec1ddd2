"""The reporter's composition root."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from reporter.adapters.store import MongoProjectionStore
from reporter.handlers.projector import Projector
from servicekit.consume import Decoded, subscribe_batches
from servicekit.deadletter import DeadLetters
from servicekit.kafka import make_broker
from servicekit.publisher import EventPublisher, KafkaEventPublisher
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.store import connect_store

NAME = "reporter"


def bootstrap(
    settings: ServiceSettings, *, publisher: EventPublisher | None = None
) -> tuple[FastAPI, Projector]:
    broker = make_broker(settings.kafka_bootstrap_servers, client_id=NAME)
    db = connect_store(settings.mongodb_url, settings.database_name, NAME)
    runtime = ServiceRuntime(NAME, settings, broker, db)
    topics = settings.topics
    store = MongoProjectionStore(db)
    projector = Projector(store, publisher or KafkaEventPublisher(broker), topics)

    async def handle(items: Sequence[Decoded]) -> None:
        await projector.handle(items)

    subscribe_batches(
        broker,
        [topics.batch_commands, topics.batch_events, topics.job_events, topics.rollback_events],
        group_id=f"{topics.prefix}reporter",
        handler=handle,
        dead_letters=DeadLetters(broker, topics.dead_letter, NAME),
        max_records=2000,
        batch_timeout_ms=200,
    )
    runtime.on_connected(store.setup)
    return runtime.app(title="Batchyard reporter"), projector
