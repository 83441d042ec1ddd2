"""The batch API's composition root."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import AliasChoices, Field

from batch_api.adapters.keys import ApiKeyStore
from batch_api.adapters.registry import BatchRegistry
from batch_api.adapters.views import ReadModels
from batch_api.api.problems import install_problem_handlers
from batch_api.api.routes import batches, job_types
from batch_api.handlers.batches import BatchService
from batch_api.web import install_dashboard
from servicekit.kafka import make_broker
from servicekit.publisher import EventPublisher, KafkaEventPublisher
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.store import connect_store

NAME = "batch-api"


class ApiSettings(ServiceSettings):
    http_port: int = Field(default=8000, validation_alias=AliasChoices("BATCHYARD_HTTP_PORT"))
    admin_key: str | None = Field(
        default=None, validation_alias=AliasChoices("BATCHYARD_ADMIN_KEY")
    )
    admin_tenant: str = Field(
        default="default", validation_alias=AliasChoices("BATCHYARD_ADMIN_TENANT")
    )


def bootstrap(settings: ApiSettings, *, publisher: EventPublisher | None = None) -> FastAPI:
    broker = make_broker(settings.kafka_bootstrap_servers, client_id=NAME)
    db = connect_store(settings.mongodb_url, settings.database_name, NAME)
    runtime = ServiceRuntime(NAME, settings, broker, db)
    registry = BatchRegistry(db)
    read_models = ReadModels(db)
    keys = ApiKeyStore(db)
    service = BatchService(
        registry, read_models, publisher or KafkaEventPublisher(broker), settings.topics
    )

    async def on_connected() -> None:
        await registry.setup()
        if settings.admin_key:
            await keys.ensure(
                settings.admin_key,
                tenant=settings.admin_tenant,
                user="admin",
                role="admin",
                name="bootstrap admin key",
            )
        await service.republish_unfinished()

    runtime.on_connected(on_connected)
    app = runtime.app(
        title="Batchyard API",
        version="0.1.0",
        description="Submit, watch and control batches of jobs.",
    )
    app.state.keys = keys
    app.state.batches = service
    app.state.read_models = read_models
    install_problem_handlers(app)
    app.include_router(batches.router)
    app.include_router(job_types.router)

    install_dashboard(app)
    return app
