"""What every service process has: a FastAPI app for health, readiness and metrics; a
connect loop that waits for Kafka and the store instead of crashing; background tasks that
start once connected and stop with the process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.kafka import ensure_topics, topic_partitions
from servicekit.metrics import BUILD_INFO, HttpMetricsMiddleware, LagMonitor
from servicekit.settings import ServiceSettings
from servicekit.store import Document, ping
from servicekit.tracing import instrument_app, shutdown_tracing

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
SHUTDOWN_STEP_S = 3.0
# Allocations (net of frees) between young-generation collections; CPython's default is 700.
GC_GEN0_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once a service has started: what exists now (modules, classes, connections, settings)
    lives as long as the process, so it is moved out of the collector's sight (`gc.freeze`),
    and young collections run less often. Under load the cyclic collector otherwise took
    about a fifth of each service's CPU, mostly full collections walking those startup
    objects again and again (docs/performance.md, session 12)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


class ServiceRuntime:
    """Owns the connections of one service process and knows whether it is ready.

    `on_connected` hooks run once, after Kafka and the store answered and the broker started;
    `background` coroutines run from then until shutdown."""

    def __init__(
        self, name: str, settings: ServiceSettings, broker: KafkaBroker, db: AsyncDatabase[Document]
    ) -> None:
        self.name = name
        self.settings = settings
        self.broker = broker
        self.db = db
        self.connected = asyncio.Event()
        self._before_start: list[Hook] = []
        self._on_connected: list[Hook] = []
        self._on_shutdown: list[Hook] = []
        self._on_stopping: list[tuple[Hook, float]] = []
        self.waiting_for: str | None = None
        self._background: list[Callable[[], Awaitable[Any]]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._ready_cache: tuple[float, bool, str] = (0.0, False, "starting")
        self._background.append(LagMonitor(settings.kafka_bootstrap_servers, broker).run)
        BUILD_INFO.labels(name).set(1)

    @property
    def standing_by(self) -> bool:
        """Waiting as a standby (e.g. for the scheduler's leader lease), healthy otherwise."""
        return not self.connected.is_set() and (self.waiting_for or "").startswith("standby")

    def before_start(self, hook: Hook) -> None:
        """Awaited after Kafka and the store answer but before any consumer starts (e.g. to
        wait for a leader lease); set `waiting_for` to say why in `/readyz` meanwhile."""
        self._before_start.append(hook)

    def on_connected(self, hook: Hook) -> None:
        self._on_connected.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        """Runs at shutdown before the broker stops (e.g. to finish in-flight work)."""
        self._on_shutdown.append(hook)

    def on_stopping(self, hook: Hook, within_s: float) -> None:
        """Runs first at shutdown, if the service had connected, for up to `within_s`, while
        `background` work (heartbeats) still runs: to hand work over before stopping."""
        self._on_stopping.append((hook, within_s))

    def background(self, factory: Callable[[], Awaitable[Any]]) -> None:
        self._background.append(factory)

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            try:
                await ping(self.db)
                await ensure_topics(
                    self.settings.kafka_bootstrap_servers, topic_partitions(self.settings.topics)
                )
                for gate in self._before_start:
                    await gate()
                self.waiting_for = None
                await self.broker.start()
                for hook in self._on_connected:
                    await hook()
                break
            except Exception as exc:
                log.warning("waiting for Kafka and the store: %s", exc)
                with contextlib.suppress(Exception):
                    await self.broker.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        settle_heap()
        self.connected.set()
        log.info("connected")
        for factory in self._background:
            self._tasks.append(asyncio.create_task(_supervised(factory)))

    async def readiness(self) -> tuple[bool, str]:
        """Ready when connected and both Kafka and the store answer now (cached for 1 s)."""
        now = time.monotonic()
        at, ok, why = self._ready_cache
        if now - at < 1.0:
            return ok, why
        if not self.connected.is_set():
            result = (False, self.waiting_for or "connecting to Kafka and the store")
        else:
            try:
                await asyncio.wait_for(ping(self.db), 2)
                if not await self.broker.ping(timeout=2):
                    raise RuntimeError("Kafka does not answer")
                result = (True, "ok")
            except Exception as exc:
                result = (False, str(exc) or type(exc).__name__)
        self._ready_cache = (now, *result)
        return result

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        connect = asyncio.create_task(self._connect())
        try:
            yield
        finally:
            await self._shutdown(connect)

    async def _shutdown(self, connect: asyncio.Task[None]) -> None:
        """Stops background work, then the broker and the store, each within a bound: a
        server that is unreachable at shutdown must not keep the process alive."""
        if self.connected.is_set():
            for stopping, within_s in self._on_stopping:
                try:
                    await asyncio.wait_for(stopping(), within_s)
                except Exception:
                    log.exception("handing work over at shutdown failed")
        connect.cancel()
        for task in self._tasks:
            task.cancel()
        for task in [connect, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, SHUTDOWN_STEP_S)
        for _hook in self._on_shutdown:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_hook(), SHUTDOWN_STEP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.broker.stop(), SHUTDOWN_STEP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.db.client.close(), SHUTDOWN_STEP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.to_thread(shutdown_tracing), SHUTDOWN_STEP_S)

    def app(self, **fastapi_options: Any) -> FastAPI:
        """The service's HTTP app: health, readiness, metrics; every request is measured
        (`batchyard_http_request_duration_seconds`) and, when tracing is on, traced."""
        app = FastAPI(lifespan=self.lifespan, **fastapi_options)
        add_health_routes(app, self)
        app.add_middleware(HttpMetricsMiddleware, service=self.name)
        instrument_app(app)
        return app


def add_health_routes(app: FastAPI, runtime: ServiceRuntime) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": runtime.name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(standby: str | None = None) -> JSONResponse:
        """503 until the service works; `?standby=ok` also answers 200 for a healthy standby
        (Kubernetes counts it available during a rollout; it receives no traffic anyway)."""
        ok, why = await runtime.readiness()
        if not ok and standby == "ok" and runtime.standing_by:
            return JSONResponse(
                {"status": "standby", "detail": why, "service": runtime.name}, status_code=200
            )
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "detail": why, "service": runtime.name},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _supervised(factory: Callable[[], Awaitable[Any]]) -> None:
    """Runs a background loop; if it crashes, it is logged and started again."""
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task crashed; restarting in 1 s")
            await asyncio.sleep(1)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Runs the app with uvicorn on uvloop until SIGTERM."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
