"""The batch API's composition root."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import AliasChoices, Field

from batch_api.adapters import metrics
from batch_api.adapters.audit import AuditLog
from batch_api.adapters.keys import ApiKeyStore
from batch_api.adapters.live import LiveFeed
from batch_api.adapters.registry import BatchRegistry
from batch_api.adapters.views import ReadModels
from batch_api.api.audit import AuditTrail
from batch_api.api.guards import BodyLimit
from batch_api.api.problems import document_problems, install_problem_handlers
from batch_api.api.routes import audit as audit_routes
from batch_api.api.routes import batches, events, items, job_types, jobs, reports
from batch_api.api.routes import keys as key_routes
from batch_api.api.routes import retention as retention_routes
from batch_api.api.routes import schedules as schedule_routes
from batch_api.api.routes import templates as template_routes
from batch_api.api.routes import webhooks as webhook_routes
from batch_api.api.routes.library import library_service, mount_library
from batch_api.domain.ratelimit import KeyLimiter, Limit
from batch_api.handlers.batches import BatchService
from batch_api.handlers.files import FileUploads
from batch_api.handlers.items import DraftItems
from batch_api.handlers.jobs import JobService
from batch_api.handlers.lifecycle import BatchLifecycle
from batch_api.handlers.live import LiveEvents
from batch_api.handlers.reports import ReportService
from batch_api.handlers.retention import RetentionService
from batch_api.handlers.schedules import ScheduleService
from batch_api.handlers.templates import TemplateService
from batch_api.web import install_dashboard
from servicekit.asyncapi import asyncapi_document
from servicekit.consume import subscribe_batches
from servicekit.deadletter import DeadLetters
from servicekit.files import FileStore
from servicekit.kafka import make_broker
from servicekit.publisher import EventPublisher, KafkaEventPublisher, ObservedPublisher
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.store import connect_store

NAME = "batch-api"
# Every HTTP surface of the API, one line each.
ROUTERS: tuple[APIRouter, ...] = (
    batches.router,
    items.router,
    jobs.router,
    events.router,
    job_types.router,
    reports.router,
    reports.stats_router,
    key_routes.router,
    audit_routes.router,
    template_routes.router,
    schedule_routes.router,
    webhook_routes.router,
    retention_routes.router,
)


class ApiSettings(ServiceSettings):
    http_port: int = Field(default=8000, validation_alias=AliasChoices("BATCHYARD_HTTP_PORT"))
    admin_key: str | None = Field(
        default=None, validation_alias=AliasChoices("BATCHYARD_ADMIN_KEY")
    )
    admin_tenant: str = Field(
        default="default", validation_alias=AliasChoices("BATCHYARD_ADMIN_TENANT")
    )
    webhook_signing_key: str = Field(
        default="",
        repr=False,
        validation_alias=AliasChoices("BATCHYARD_WEBHOOK_SIGNING_KEY"),
        description="derives each tenant's webhook secret; the same in batch-api and reporter",
    )
    rate_limit_per_s: float = Field(
        default=100.0,
        validation_alias=AliasChoices("BATCHYARD_API_RATE_LIMIT_PER_S"),
        description="requests a second per key by default (0: no limit)",
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, validation_alias=AliasChoices("BATCHYARD_API_RATE_LIMIT_BURST")
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("BATCHYARD_API_MAX_BODY_BYTES"),
        description="larger request bodies are refused with 413",
    )
    max_export_jobs: int = Field(
        default=1_000_000,
        ge=1,
        validation_alias=AliasChoices("BATCHYARD_API_MAX_EXPORT_JOBS"),
        description="exports and CSV reports of larger batches are refused with 422",
    )
    max_file_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1,
        validation_alias=AliasChoices("BATCHYARD_API_MAX_FILE_BYTES"),
        description="larger uploaded files are refused with 413 (a request is also capped "
        "by max_body_bytes)",
    )
    read_cache_s: float = Field(
        default=0.25,
        ge=0,
        validation_alias=AliasChoices("BATCHYARD_API_READ_CACHE_S"),
        description="`GET /v1/batches/{id}` answers repeated reads of a batch from memory for "
        "this long (0: every read goes to the store); this process's own changes show at once",
    )
    max_files_per_request: int = Field(
        default=1000,
        ge=1,
        validation_alias=AliasChoices("BATCHYARD_API_MAX_FILES_PER_REQUEST"),
        description="more files in one upload request are refused with 413",
    )


def bootstrap(settings: ApiSettings, *, publisher: EventPublisher | None = None) -> FastAPI:
    broker = make_broker(settings.kafka_bootstrap_servers, client_id=NAME)
    db = connect_store(settings.mongodb_url, settings.database_name, NAME)
    runtime = ServiceRuntime(NAME, settings, broker, db)
    registry = BatchRegistry(db)
    read_models = ReadModels(db)
    keys = ApiKeyStore(db)
    events = ObservedPublisher(publisher or KafkaEventPublisher(broker), metrics.observe)
    feed = LiveFeed(settings.kafka_bootstrap_servers, settings.topics)
    service = BatchService(
        registry,
        read_models,
        events,
        settings.topics,
        read_cache_s=settings.read_cache_s,
        latest_seq=feed.latest_seq,  # batch reads are not cached behind the live feed
    )
    files = FileStore(db)
    lifecycle = BatchLifecycle(service, registry, read_models, events, settings.topics, files)
    job_service = JobService(service, registry, read_models, events, settings.topics)
    runtime.background(feed.run)
    templates = TemplateService(db, service)
    library = library_service(db, service)
    schedules = ScheduleService(
        db, service, lifecycle, templates, events, settings.topics, library=library
    )
    dead_letters = DeadLetters(broker, settings.topics.dead_letter, NAME)
    subscribe_batches(
        broker,
        [settings.topics.schedules],
        group_id=f"{settings.topics.prefix}batch-api-schedules",
        handler=schedules.handle,
        dead_letters=dead_letters,
        max_records=100,
    )

    reports = ReportService(service, read_models, settings.max_export_jobs)
    audit = AuditLog(db)
    retention = RetentionService(
        db, registry, read_models, reports, audit, events, settings.topics, files
    )
    subscribe_batches(
        broker,
        [settings.topics.retention],
        group_id=f"{settings.topics.prefix}batch-api-retention",
        handler=retention.handle,
        dead_letters=dead_letters,
        max_records=100,
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
        await schedules.announce_all()
        await retention.announce_all()

    runtime.on_connected(on_connected)
    app = runtime.app(
        title="Batchyard API",
        version="0.1.0",
        description="Submit, watch and control batches of jobs.",
    )
    app.state.keys = keys
    app.state.audit = audit
    app.state.limiter = KeyLimiter()
    app.state.default_limit = Limit(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.state.batches = service
    app.state.lifecycle = lifecycle
    app.state.items = DraftItems(service, registry)
    app.state.files = FileUploads(
        service, files, settings.max_file_bytes, settings.max_files_per_request
    )
    app.state.jobs = job_service
    app.state.live = LiveEvents(service, feed)
    app.state.read_models = read_models
    app.state.reports = reports
    app.state.retention = retention
    app.state.templates = templates
    app.state.schedules = schedules
    app.state.webhook_signing_key = settings.webhook_signing_key
    install_problem_handlers(app)
    document_problems(app)

    @app.get("/asyncapi", tags=["docs"], include_in_schema=False)
    async def asyncapi() -> dict[str, Any]:
        """The AsyncAPI 3 document of every event on this deployment's topics."""
        return asyncapi_document(settings.topics.prefix, app.version)

    for router in ROUTERS:
        app.include_router(router)
    mount_library(app, library)
    install_dashboard(app)
    # Outermost last: the body cap refuses before anything reads; the audit trail sees the
    # final status of every call that reached the routes.
    app.add_middleware(AuditTrail, log=audit)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
