"""Structured JSON logs on stderr, one object per line.

Each record carries the service, and when known the batch and job it is about and the trace
it belongs to: from `extra={...}`, else from `log_context(...)` around the work, else (for
`trace_id`/`span_id`) from the current OpenTelemetry span."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
from opentelemetry import trace

_EXTRA_KEYS = ("batch_id", "job_id", "trace_id", "span_id", "event_type", "topic")
_CONTEXT: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "batchyard_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Adds `fields` (e.g. batch_id, job_id) to every record logged inside the block."""
    merged = {**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = _CONTEXT.get()
        for key in _EXTRA_KEYS:
            value = record.__dict__.get(key, context.get(key))
            if value is not None:
                out[key] = value
        if "trace_id" not in out:
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                out["trace_id"] = format(span.trace_id, "032x")
                out["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "pymongo", "uvicorn.access", "faststream"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
