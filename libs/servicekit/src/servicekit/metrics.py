"""Prometheus metrics every service has: HTTP requests by route, dead letters, consumer lag
per topic and group, and FastStream's own consume/publish metrics.

All metrics live on prometheus-client's default registry, served at `/metrics` by
`servicekit.runtime`. Names start with `batchyard_` (FastStream's with `faststream_`); the
Grafana dashboards and alert rules in `deploy/` use exactly these names, and an e2e test
checks that every name they use is exported by a running stack."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

APP_NAME = "batchyard"  # the `app_name` label of FastStream's metrics

HTTP_REQUEST_SECONDS = Histogram(
    "batchyard_http_request_duration_seconds",
    "HTTP requests served, by route template, method and status code",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DEAD_LETTERS = Counter(
    "batchyard_dead_letters_total",
    "Consumed records published to the dead-letter topic, by consumer and source topic",
    ["service", "source_topic"],
)
CONSUMER_LAG = Gauge(
    "batchyard_consumer_lag_messages",
    "Records in a topic not yet committed by a consumer group (summed over partitions); "
    "every member of a group reports the same value, so aggregate with max",
    ["group", "topic"],
)
CONSUMER_LAG_UPDATED = Gauge(
    "batchyard_consumer_lag_updated_timestamp_seconds",
    "When this process last measured its consumer groups' lag",
)
BUILD_INFO = Gauge(
    "batchyard_service_info", "Constant 1, labelled with the service's name", ["service"]
)


# FastStream's own publish counter, made here first so that its middleware reuses it (it takes a
# metric of this name already on the registry): `servicekit.publisher` sends events past the
# middleware and counts them in the same series the dashboards read.
PUBLISHED_MESSAGES = Counter(
    "faststream_published_messages_total",
    "Count of published messages by destination and status",
    ["app_name", "broker", "destination", "status"],
)


def count_published(topic: str, n: int, *, ok: bool) -> None:
    PUBLISHED_MESSAGES.labels(
        app_name=APP_NAME, broker="kafka", destination=topic, status="success" if ok else "error"
    ).inc(n)


def prometheus_middleware() -> KafkaPrometheusMiddleware:
    """FastStream's middleware for consumed batches and published messages
    (`faststream_received_*`, `faststream_published_*`), on the default registry."""
    return KafkaPrometheusMiddleware(registry=REGISTRY, app_name=APP_NAME)


# --- HTTP ------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class HttpMetricsMiddleware:
    """Observes every HTTP request's duration by route *template* (`/v1/batches/{batch_id}`,
    so ids do not multiply series), method and status. Requests no route matched are
    labelled `unmatched`."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_REQUEST_SECONDS.labels(self.service, scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )


# --- consumer lag ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchedGroup:
    group: str
    topics: tuple[str, ...]
    from_beginning: bool


_WATCHED: weakref.WeakKeyDictionary[KafkaBroker, list[WatchedGroup]] = weakref.WeakKeyDictionary()


def watch_group(
    broker: KafkaBroker, group: str, topics: Sequence[str], *, from_beginning: bool
) -> None:
    """Records that `broker` consumes `topics` in `group`, so its lag is measured."""
    groups = _WATCHED.setdefault(broker, [])
    if all(g.group != group for g in groups):
        groups.append(WatchedGroup(group, tuple(topics), from_beginning))


def watched_groups(broker: KafkaBroker) -> list[WatchedGroup]:
    return list(_WATCHED.get(broker, []))


def lag_of(
    partitions: Sequence[TopicPartition],
    committed: dict[TopicPartition, int],
    beginning: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
    *,
    from_beginning: bool,
) -> dict[str, int]:
    """Lag per topic: end offset minus committed offset, summed over partitions. A partition
    the group never committed counts from its first retained record when the group reads from
    the beginning, else as no lag (it starts at the end)."""
    lag: dict[str, int] = {}
    for tp in partitions:
        end_offset = end.get(tp, 0)
        if tp in committed:
            start = committed[tp]
        elif from_beginning:
            start = beginning.get(tp, 0)
        else:
            start = end_offset
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end_offset - start)
    return lag


class LagMonitor:
    """Measures the lag of a broker's consumer groups every `interval_s` seconds into
    `batchyard_consumer_lag_messages` (the way KEDA's Kafka scaler measures it: latest offset
    minus the group's committed offset)."""

    def __init__(self, bootstrap: str, broker: KafkaBroker, interval_s: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.broker = broker
        self.interval_s = interval_s

    async def run(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await admin.start()
        await offsets.start()
        try:
            while True:
                try:
                    await self.measure(admin, offsets)
                except Exception as exc:  # Kafka away: keep the last values, try again
                    log.warning("could not measure consumer lag: %s", exc)
                await asyncio.sleep(self.interval_s)
        finally:
            await offsets.stop()
            await admin.close()

    async def measure(self, admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer) -> None:
        for watched in watched_groups(self.broker):
            described = await admin.describe_topics(list(watched.topics))
            partitions = [
                TopicPartition(t["topic"], p["partition"])
                for t in described
                if not t.get("error_code")
                for p in t["partitions"]
            ]
            if not partitions:
                continue
            committed_meta = await admin.list_consumer_group_offsets(watched.group)
            committed = {
                tp: meta.offset
                for tp, meta in committed_meta.items()
                if meta is not None and meta.offset >= 0
            }
            beginning = await offsets.beginning_offsets(partitions)
            end = await offsets.end_offsets(partitions)
            lags = lag_of(
                partitions, committed, beginning, end, from_beginning=watched.from_beginning
            )
            for topic, lag in lags.items():
                CONSUMER_LAG.labels(watched.group, topic).set(lag)
        CONSUMER_LAG_UPDATED.set_to_current_time()
