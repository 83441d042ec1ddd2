"""OpenTelemetry tracing: one trace follows a batch from its HTTP request through every
service and job.

How the context travels: the W3C `traceparent` of the producing span is written into the
event envelope (`Envelope.traceparent`, part of the public event contract), so it survives
Kafka, replays and other consumers. Publishing an event starts a PRODUCER span whose parent
is, in this order: the envelope's own `traceparent` if the caller set one; the current span
(e.g. the HTTP request's); the batch's trace, i.e. the last command about that batch this
process consumed (so the scheduler's dispatches and batch events join the trace of the request
that created, retried or resumed the batch). Consuming starts a CONSUMER span per traced
message, child of its producer; it is not made current, and FastStream's telemetry middleware
is not used (events are published past FastStream, `servicekit.publisher`, so its consume
spans would have no producer: each consumed batch would start a context of its own, and what
a handler publishes would join that instead of the batch's trace). FastAPI's instrumentation
makes the HTTP request the root.

Configuration is OpenTelemetry's own: tracing is on when `OTEL_TRACES_EXPORTER` names an
exporter (`otlp`, `console`) or an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and off when `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`. The OTLP/HTTP exporter, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` and `OTEL_TRACES_SAMPLER` are read by the SDK.
Without a sampler set, only HTTP requests start traces: a Kafka message without a trace
context (a heartbeat) starts none."""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from contracts.envelope import Envelope

TRACER_NAME = "batchyard"
UNTRACED_PATHS = "/healthz,/readyz,/metrics"

_PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, bool] = {"enabled": False}


def tracing_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables ask for traces (see the module's docstring)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    )


def enabled() -> bool:
    return _state["enabled"]


class _RootsFromRequests(Sampler):
    """Samples a root span only if it is an HTTP request or an operation started on purpose
    (INTERNAL); messages without a trace context start no trace of their own."""

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        chosen = ALWAYS_ON if kind in (SpanKind.SERVER, SpanKind.INTERNAL) else ALWAYS_OFF
        return chosen.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "RootsFromRequests"


def _exporter(environ: Mapping[str, str]) -> SpanExporter:
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def configure_tracing(
    service: str,
    *,
    exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Installs the global tracer provider if tracing is wanted (or `exporter` is given, for
    tests); returns whether tracing is on. Call once per process, before `bootstrap`."""
    env = os.environ if environ is None else environ
    if exporter is None and not tracing_wanted(env):
        _state["enabled"] = False
        return False
    sampler = None if env.get("OTEL_TRACES_SAMPLER") else ParentBased(_RootsFromRequests())
    provider = TracerProvider(
        resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service}),
        sampler=sampler,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(env)))
    trace.set_tracer_provider(provider)
    _state["enabled"] = True
    return True


def shutdown_tracing() -> None:
    """Flushes spans not yet exported (called at process shutdown)."""
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


def instrument_app(app: FastAPI) -> None:
    """HTTP requests become server spans (health and metrics endpoints excepted)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=UNTRACED_PATHS, exclude_spans=["receive", "send"]
    )


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


# --- the traceparent ---------------------------------------------------------------------------


def traceparent_of(ctx: otel_context.Context | None = None) -> str | None:
    """The W3C traceparent of the span current in `ctx` (default: now), None if none."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return carrier.get("traceparent")


def joined(envelope: Envelope) -> Envelope:
    """`envelope` carrying the traceparent of the span current now, if it carries none and
    one is: for an event handed to a publisher that sends it later from another context (a
    `CoalescingPublisher` sends in the context of the turn's first caller, which may be
    outside any trace)."""
    if not enabled() or envelope.traceparent:
        return envelope
    current = trace.get_current_span().get_span_context()
    if not current.is_valid:
        return envelope
    return envelope.model_copy(update={"traceparent": traceparent_of()})


def context_of(traceparent: str | None) -> otel_context.Context | None:
    """The context a traceparent names, or None if it is missing or malformed."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


class BatchTraces:
    """Per process: the trace context of the last command seen for each batch (bounded)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._by_batch: OrderedDict[str, str] = OrderedDict()

    def remember(self, batch_id: str, traceparent: str) -> None:
        self._by_batch[batch_id] = traceparent
        self._by_batch.move_to_end(batch_id)
        while len(self._by_batch) > self.capacity:
            self._by_batch.popitem(last=False)

    def get(self, batch_id: str | None) -> str | None:
        return self._by_batch.get(batch_id) if batch_id else None

    def clear(self) -> None:
        self._by_batch.clear()


BATCH_TRACES = BatchTraces()
COMMANDS_TOPIC_SUFFIX = "batchyard.batch.commands"


def _attributes(envelope: Envelope, topic: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "batchyard.event_type": envelope.type,
        "batchyard.event_id": envelope.event_id,
    }
    if envelope.batch_id:
        attributes["batchyard.batch_id"] = envelope.batch_id
    job_id = envelope.data.get("job_id")
    if isinstance(job_id, str):
        attributes["batchyard.job_id"] = job_id
    jobs = envelope.data.get("jobs")  # a `JobsDispatched`
    if isinstance(jobs, list):
        attributes["batchyard.job_ids"] = [
            j["job_id"] for j in jobs if isinstance(j, dict) and isinstance(j.get("job_id"), str)
        ]
    return attributes


@contextlib.contextmanager
def producing(envelope: Envelope, topic: str) -> Iterator[Envelope]:
    """Around publishing one event: yields the envelope to send, carrying the traceparent of
    a PRODUCER span (current while the broker publishes). Yields it unchanged when tracing
    is off or the event belongs to no trace."""
    if not enabled():
        yield envelope
        return
    parent = context_of(envelope.traceparent)
    if parent is None and trace.get_current_span().get_span_context().is_valid:
        parent = otel_context.get_current()
    if parent is None:
        parent = context_of(BATCH_TRACES.get(envelope.batch_id))
    if parent is None:
        yield envelope
        return
    with tracer().start_as_current_span(
        f"publish {envelope.type}",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=_attributes(envelope, topic),
    ):
        yield envelope.model_copy(update={"traceparent": traceparent_of()})


@contextlib.contextmanager
def consuming(group: str, items: Sequence[tuple[str, Envelope]]) -> Iterator[None]:
    """Around handling a consumed batch of (topic, envelope): one CONSUMER span per traced
    message, child of its producer, lasting as long as the batch's handling (which is when
    its effect happens). Commands update the batch's trace context."""
    if not enabled():
        yield
        return
    spans = []
    for topic, envelope in items:
        parent = context_of(envelope.traceparent)
        if parent is None:
            continue
        if envelope.batch_id and topic.endswith(COMMANDS_TOPIC_SUFFIX):
            BATCH_TRACES.remember(envelope.batch_id, envelope.traceparent or "")
        attributes = _attributes(envelope, topic)
        attributes["messaging.consumer.group.name"] = group
        spans.append(
            tracer().start_span(
                f"process {envelope.type}",
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=attributes,
            )
        )
    try:
        yield
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        for span in spans:
            span.end()


@contextlib.contextmanager
def span(
    name: str, *, parent: str | None = None, attributes: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """An INTERNAL span, current inside the block, child of `parent` (a traceparent) if given
    and valid, else of the current span. Nothing when tracing is off or there is no parent."""
    if not enabled():
        yield
        return
    ctx = context_of(parent)
    if ctx is None and not trace.get_current_span().get_span_context().is_valid:
        yield
        return
    with tracer().start_as_current_span(
        name, context=ctx, kind=SpanKind.INTERNAL, attributes=dict(attributes or {})
    ):
        yield
