"""Trace propagation through envelopes, in one process with an in-memory span exporter: an
HTTP request's span, the scheduler's dispatch, the executor's run and the reporter's
projection form one tree (the e2e test tests/e2e/test_tracing.py proves the same across real
processes and Kafka)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.codec import decode, envelope_for
from contracts.envelope import Envelope
from contracts.events import (
    BatchSubmitted,
    DispatchedJob,
    ExecutorHeartbeat,
    JobCompleted,
    JobDispatched,
    JobsDispatched,
)
from contracts.topics import Topics
from servicekit import tracing
from servicekit.publisher import CoalescingPublisher, KafkaEventPublisher, Outgoing

pytestmark = pytest.mark.unit

TOPICS = Topics("t.")
EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on with an in-memory exporter (the global provider can be set only once per
    process, so the exporter is shared and cleared per test)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=tracing.ParentBased(tracing._RootsFromRequests()))
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    tracing.BATCH_TRACES.clear()
    tracing._state["enabled"] = True
    try:
        yield EXPORTER
    finally:
        tracing._state["enabled"] = False
        tracing.BATCH_TRACES.clear()


class FakeProducer:
    """Records what would be sent to Kafka."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, *, value: bytes, **_: Any) -> asyncio.Future[None]:
        self.sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def take(self) -> list[tuple[str, Envelope]]:
        out = [(topic, decode(body)[0]) for topic, body in self.sent]
        self.sent.clear()
        return out


def _by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


async def test_a_jobs_span_tree_from_request_to_projection(spans: InMemorySpanExporter) -> None:
    broker = FakeProducer()
    publisher = KafkaEventPublisher(broker)
    batch_id, job_id = "b_1", "b_1.0"

    # batch-api: the request publishes the command inside its server span
    with tracing.tracer().start_as_current_span("POST /v1/batches", kind=SpanKind.SERVER):
        submitted = BatchSubmitted(batch_id=batch_id, total_items=1, chunks=1)
        await publisher.publish(
            [Outgoing(TOPICS.batch_commands, batch_id, envelope_for(submitted, producer="api"))]
        )
    [(topic, command)] = broker.take()
    assert command.traceparent is not None

    # scheduler: consumes the command, later dispatches with no span current
    with tracing.consuming("scheduler", [(topic, command)]):
        pass
    dispatched = JobDispatched(
        job_id=job_id,
        batch_id=batch_id,
        index=0,
        job_type="demo.sleep",
        attempt=1,
        item={},
        lease_s=15,
        timeout_s=60,
        dispatched_at="2026-01-01T00:00:00Z",
    )
    await publisher.publish(
        [Outgoing(TOPICS.job_dispatch, job_id, envelope_for(dispatched, producer="scheduler"))]
    )
    [(topic, dispatch)] = broker.take()

    # executor: consumes the dispatch, runs the job under it, publishes the result
    with tracing.consuming("executors", [(topic, dispatch)]):
        pass
    with tracing.span("run demo.sleep", parent=dispatch.traceparent):
        completed = JobCompleted(
            job_id=job_id,
            batch_id=batch_id,
            attempt=1,
            executor_id="x",
            started_at="2026-01-01T00:00:00Z",
            finished_at="2026-01-01T00:00:01Z",
            duration_ms=1000,
        )
        await publisher.publish(
            [Outgoing(TOPICS.job_events, batch_id, envelope_for(completed, producer="x"))]
        )
    [(topic, result)] = broker.take()

    # reporter: projects the result
    with tracing.consuming("reporter", [(topic, result)]):
        pass

    by_name = _by_name(spans)
    request = by_name["POST /v1/batches"]
    chain = [
        ("process JobCompleted", SpanKind.CONSUMER),
        ("publish JobCompleted", SpanKind.PRODUCER),
        ("run demo.sleep", SpanKind.INTERNAL),
        ("publish JobDispatched", SpanKind.PRODUCER),
        ("publish BatchSubmitted", SpanKind.PRODUCER),
        ("POST /v1/batches", SpanKind.SERVER),
    ]
    for (child, kind), (parent, _) in itertools.pairwise(chain):
        assert by_name[child].kind == kind, child
        assert _parent(by_name[child]) == by_name[parent].context.span_id, (child, parent)
    assert request.parent is None
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {request.context.trace_id}
    assert by_name["publish JobDispatched"].attributes["batchyard.job_id"] == job_id
    assert by_name["process BatchSubmitted"].attributes["messaging.consumer.group.name"] == (
        "scheduler"
    )


async def test_a_grouped_dispatchs_spans_name_every_job(spans: InMemorySpanExporter) -> None:
    broker = FakeProducer()
    publisher = KafkaEventPublisher(broker)
    group = JobsDispatched(
        batch_id="b_1",
        job_type="demo.sleep",
        jobs=[DispatchedJob(job_id=f"b_1.{i}", index=i, attempt=1, item={}) for i in range(3)],
        lease_s=15,
        timeout_s=60,
        dispatched_at="2026-01-01T00:00:00Z",
    )
    with tracing.tracer().start_as_current_span("round"):
        await publisher.publish(
            [Outgoing(TOPICS.job_dispatch, "b_1.0", envelope_for(group, producer="scheduler"))]
        )
    [(topic, dispatch)] = broker.take()
    with tracing.consuming("executors", [(topic, dispatch)]):
        pass
    by_name = _by_name(spans)
    for name in ("publish JobsDispatched", "process JobsDispatched"):
        assert by_name[name].attributes["batchyard.job_ids"] == ("b_1.0", "b_1.1", "b_1.2")


def heartbeat() -> Outgoing:
    """An executor's heartbeat, as it publishes one (outside any trace)."""
    beat = ExecutorHeartbeat(
        executor_id="x",
        slots_total=1,
        slots_free=1,
        running=0,
        job_types=[],
        sent_at="2026-01-01T00:00:00Z",
    )
    return Outgoing(TOPICS.executor_heartbeats, "x", envelope_for(beat, producer="x"))


async def test_untraced_messages_start_no_trace(spans: InMemorySpanExporter) -> None:
    broker = FakeProducer()
    publisher = KafkaEventPublisher(broker)
    await publisher.publish([heartbeat()])
    [(topic, envelope)] = broker.take()
    assert envelope.traceparent is None
    with tracing.consuming("scheduler", [(topic, envelope)]):
        pass
    assert spans.get_finished_spans() == ()


async def test_an_event_coalesced_behind_an_untraced_one_keeps_its_trace(
    spans: InMemorySpanExporter,
) -> None:
    """An executor's heartbeat and a job's outcome handed to its publisher in one turn of
    the event loop go out together, from the heartbeat's context (no trace): the outcome
    still joins its job's trace."""
    broker = FakeProducer()
    publisher = CoalescingPublisher(KafkaEventPublisher(broker))
    done = JobCompleted(
        job_id="b.0",
        batch_id="b",
        attempt=1,
        executor_id="x",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:01Z",
        duration_ms=1000,
        output={},
    )

    async def beat() -> None:
        await publisher.publish([heartbeat()])

    async def outcome() -> None:
        with tracing.tracer().start_as_current_span("run", kind=SpanKind.INTERNAL) as run:
            job_trace = run.get_span_context().trace_id
            await publisher.publish(
                [Outgoing(TOPICS.job_events, "b", envelope_for(done, producer="x"))]
            )
        outcomes.append(job_trace)

    outcomes: list[int] = []
    await asyncio.gather(beat(), outcome())  # the heartbeat's call comes first
    sent = dict(broker.take())
    assert sent[TOPICS.executor_heartbeats].traceparent is None
    outcome_trace = tracing.context_of(sent[TOPICS.job_events].traceparent)
    assert outcome_trace is not None
    published = trace.get_current_span(outcome_trace).get_span_context()
    assert published.trace_id == outcomes[0]
    assert "publish JobCompleted" in _by_name(spans)


async def test_a_failed_handling_marks_the_consumer_spans(spans: InMemorySpanExporter) -> None:
    with tracing.tracer().start_as_current_span("POST /x", kind=SpanKind.SERVER):
        parent = tracing.traceparent_of()
    event = BatchSubmitted(batch_id="b_2", total_items=1, chunks=1)
    envelope = envelope_for(event, producer="api", traceparent=parent)
    with (
        pytest.raises(RuntimeError),
        tracing.consuming("scheduler", [(TOPICS.batch_commands, envelope)]),
    ):
        raise RuntimeError("store down")
    [span] = [s for s in spans.get_finished_spans() if s.name == "process BatchSubmitted"]
    assert not span.status.is_ok
    assert tracing.BATCH_TRACES.get("b_2") == parent


def test_tracing_is_configured_by_the_standard_variables() -> None:
    wanted = tracing.tracing_wanted
    assert not wanted({})
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"})
    assert not wanted({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"})
    assert not wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "})


def test_malformed_traceparents_are_ignored() -> None:
    assert tracing.context_of(None) is None
    assert tracing.context_of("garbage") is None
    assert tracing.context_of("00-" + "0" * 32 + "-" + "0" * 16 + "-01") is None


def test_batch_traces_are_bounded_and_keep_the_latest() -> None:
    traces = tracing.BatchTraces(capacity=2)
    traces.remember("a", "1")
    traces.remember("b", "2")
    traces.remember("a", "3")
    traces.remember("c", "4")
    assert traces.get("a") == "3"
    assert traces.get("b") is None
    assert traces.get("c") == "4"
    assert traces.get(None) is None
