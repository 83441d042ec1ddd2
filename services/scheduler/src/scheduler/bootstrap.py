"""The scheduler's composition root: settings in, a runnable app out. Nothing connects at
import time; tests pass their own store or publisher through the same function."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence

from fastapi import FastAPI
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from scheduler.adapters import metrics
from scheduler.adapters.leader import MongoLeaderLease
from scheduler.adapters.store import (
    MongoRetentionStore,
    MongoSchedulerStore,
    MongoScheduleStore,
    SchedulerStore,
)
from scheduler.domain.ratelimit import parse_rate_limits
from scheduler.handlers.engine import Scheduler, SchedulerConfig
from scheduler.handlers.retention import RetentionKeeper
from scheduler.handlers.schedules import ScheduleClock
from servicekit.consume import Decoded, subscribe_batches
from servicekit.deadletter import DeadLetters
from servicekit.kafka import make_broker
from servicekit.publisher import EventPublisher, KafkaEventPublisher, ObservedPublisher
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.store import connect_store

NAME = "scheduler"
log = logging.getLogger(__name__)


class SchedulerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BATCHYARD_SCHEDULER_", extra="ignore")

    http_port: int = Field(default=8001, validation_alias=AliasChoices("BATCHYARD_HTTP_PORT"))
    lease_s: float = Field(default=15.0, gt=0)
    prefetch: int = Field(default=8, ge=0)
    dispatch_group: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="jobs of a batch sent in one JobsDispatched at most (1: a JobDispatched a "
        "job). Groups go only for jobs that lately ended within 100 ms, and only while every "
        "live executor takes them",
    )
    global_max_in_flight: int = Field(default=100_000, ge=1)
    tick_s: float = Field(default=0.05, gt=0)
    leader_ttl_s: float = Field(default=10.0, gt=1)
    cron_tick_s: float = Field(default=1.0, gt=0, description="how often due schedules fire")
    retention_period_s: float = Field(
        default=3600.0, gt=0, description="how often each tenant's retention policy runs"
    )
    retention_check_s: float = Field(
        default=5.0, gt=0, description="how often the leader looks for tenants that are due"
    )
    retention_chunk: int = Field(default=100, ge=1, description="batches per retention step")
    retention_max_per_run: int = Field(
        default=10_000, ge=1, description="batches archived or deleted per run at most"
    )
    rate_limits: str = Field(
        default="",
        description="jobs started per second by job type: `http.request=50,demo.sleep=2.5`",
    )

    @field_validator("rate_limits")
    @classmethod
    def _valid_rate_limits(cls, value: str) -> str:
        parse_rate_limits(value)
        return value


def bootstrap(
    settings: SchedulerSettings,
    *,
    store: SchedulerStore | None = None,
    publisher: EventPublisher | None = None,
) -> tuple[FastAPI, Scheduler]:
    broker = make_broker(settings.kafka_bootstrap_servers, client_id=NAME)
    db = connect_store(settings.mongodb_url, settings.database_name, NAME)
    runtime = ServiceRuntime(NAME, settings, broker, db)
    topics = settings.topics
    lease = MongoLeaderLease(
        db,
        settings.instance_id or f"scheduler-{socket.gethostname()}-{os.getpid()}",
        settings.leader_ttl_s,
    )
    scheduler = Scheduler(
        # job changes written by a later leader order after those of an earlier one
        store=store or MongoSchedulerStore(db, epoch=lambda: lease.token or 0),
        publisher=ObservedPublisher(
            publisher or KafkaEventPublisher(broker),
            metrics.observer(lambda batch_id: _job_type(scheduler, batch_id)),
        ),
        topics=topics,
        config=SchedulerConfig(
            lease_s=settings.lease_s,
            prefetch=settings.prefetch,
            dispatch_group=settings.dispatch_group,
            global_max_in_flight=settings.global_max_in_flight,
            rate_limits=parse_rate_limits(settings.rate_limits),
        ),
    )
    scheduler.fence = lease.still_valid
    metrics.track(scheduler, lease.still_valid)
    recovered = asyncio.Event()
    dead_letters = DeadLetters(broker, topics.dead_letter, NAME)

    async def handle(items: Sequence[Decoded]) -> None:
        await recovered.wait()
        await scheduler.handle(items)

    subscribe_batches(
        broker,
        [
            topics.batch_commands,
            topics.job_events,
            topics.executor_heartbeats,
            topics.rollback_events,
        ],
        group_id=f"{topics.prefix}scheduler",
        handler=handle,
        dead_letters=dead_letters,
        max_records=2000,
    )

    clock = ScheduleClock(
        MongoScheduleStore(db),
        ObservedPublisher(publisher or KafkaEventPublisher(broker), metrics.observe_schedules),
        topics,
        fence=lease.still_valid,
    )
    metrics.track_schedules(clock)

    async def handle_schedules(items: Sequence[Decoded]) -> None:
        await recovered.wait()
        await clock.handle(items)

    subscribe_batches(
        broker,
        [topics.schedules],
        group_id=f"{topics.prefix}scheduler-schedules",
        handler=handle_schedules,
        dead_letters=dead_letters,
        max_records=500,
    )

    keeper = RetentionKeeper(
        policies=MongoRetentionStore(db),
        batches=scheduler.store,
        publisher=publisher or KafkaEventPublisher(broker),
        topics=topics,
        engine_lock=scheduler.lock,
        is_active=scheduler.holds,
        fence=lease.still_valid,
        period_s=settings.retention_period_s,
        chunk_size=settings.retention_chunk,
        max_per_run=settings.retention_max_per_run,
        on_run=metrics.observe_retention,
    )

    async def handle_retention(items: Sequence[Decoded]) -> None:
        await recovered.wait()
        await keeper.handle(items)

    subscribe_batches(
        broker,
        [topics.retention, topics.rollback_events],
        group_id=f"{topics.prefix}scheduler-retention",
        handler=handle_retention,
        dead_letters=dead_letters,
        max_records=100,
    )

    async def recover() -> None:
        await scheduler.recover()
        await clock.recover()
        await keeper.recover()
        recovered.set()

    async def retention() -> None:
        await recovered.wait()
        while True:
            try:
                await keeper.tick()
            except Exception:  # the store or broker is away: the next check tries again
                log.exception("a periodic retention run failed; retrying")
            await asyncio.sleep(settings.retention_check_s)

    async def cron() -> None:
        await recovered.wait()
        while True:
            try:
                await clock.tick()
            except Exception:  # the store or broker is away: the next tick tries again
                log.exception("firing due schedules failed; retrying")
            await asyncio.sleep(settings.cron_tick_s)

    async def ticking() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(scheduler.wake.wait(), settings.tick_s)
            scheduler.wake.clear()
            with metrics.DECISION_SECONDS.time():
                await scheduler.tick()

    renewing: list[asyncio.Task[None]] = []

    async def keep_lease() -> None:
        while True:
            await asyncio.sleep(lease.ttl_s / 5)
            try:
                held = await lease.renew()
            except Exception as exc:  # the store is away: keep the lease, act only while valid
                log.warning("could not renew the scheduler lease: %s", exc)
                continue
            if not held:
                log.critical("another scheduler holds the lease now; exiting")
                os._exit(3)

    async def become_leader() -> None:
        runtime.waiting_for = "standby: another scheduler holds the lease"
        while not await lease.try_acquire():  # noqa: ASYNC110 - polls the store; no event exists
            await asyncio.sleep(1)
        log.info("holding the scheduler lease (token %s)", lease.token)
        # Renew from now on: joining the consumer group can take longer than the lease.
        if not any(not task.done() for task in renewing):
            renewing.append(asyncio.create_task(keep_lease()))

    async def stop_renewing() -> None:
        for task in renewing:
            task.cancel()

    runtime.before_start(become_leader)
    runtime.on_connected(recover)
    runtime.on_shutdown(stop_renewing)
    runtime.background(ticking)
    runtime.background(cron)
    runtime.background(retention)
    return runtime.app(title="Batchyard scheduler"), scheduler


def _job_type(scheduler: Scheduler, batch_id: str) -> str | None:
    batch = scheduler.batches.get(batch_id)
    return batch.job_type if batch is not None else None
