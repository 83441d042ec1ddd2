"""What crosses the boundary between the executor and a job's worker process, as JSON (no
pickled objects of ours): the request is one JSON document given at start; the worker answers
with JSON lines on a socket, any number of `progress`, then one `result` or `error`.

    {"kind": "progress", "percent": 50.0, "message": "half"}
    {"kind": "result", "output": {...}, "warnings": ["..."]}
    {"kind": "error", "error_class": "NotFound", "message": "...", "retryable": false,
     "traceback": null, "severity": null}
    {"kind": "skip", "reason": "already extracted"}

A worker that ends without its last line (out of memory, killed by a limit, crashed) is judged
by how it ended (`domain.limits.judge_exit`)."""

from __future__ import annotations

import json
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from contracts.events.execution import MAX_TRACEBACK
from jobkit import AwaitingDecision, JobError, PermanentError, RetryableError, Severity, SkipJob
from jobkit.errors import SEVERITIES

MAX_LINE_BYTES = 8 * 1024 * 1024


class ProtocolError(ValueError):
    """A line from a worker that is not one of the messages above."""


@dataclass(frozen=True)
class WorkerRequest:
    """One job for one worker process. `job_type` is the class to instantiate, as
    `module:qualname`; `item` the job's input (batch defaults merged, already validated once
    by the executor); the limits are the batch's, `alarm_s` the worker's own backstop."""

    job_type: str
    job_id: str
    batch_id: str
    attempt: int
    item: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    max_memory_mb: int | None = None
    max_cpu_s: int | None = None
    alarm_s: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=to_jsonable_python)

    @classmethod
    def from_json(cls, text: str) -> WorkerRequest:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Progress:
    percent: float | None
    message: str


@dataclass(frozen=True)
class Result:
    output: dict[str, Any]
    warnings: list[str] = field(default_factory=list)  # what the job noted (`ctx.warn`)


@dataclass(frozen=True)
class Failure:
    error_class: str
    message: str
    retryable: bool
    traceback: str | None = None  # of an exception the job did not mean to raise
    severity: Severity | None = None  # the job type's, if it gave one
    awaiting_decision: bool = False  # the job type's `AwaitingDecision`

    def to_error(self) -> JobError:
        kind: type[JobError] = RetryableError if self.retryable else PermanentError
        if self.awaiting_decision:
            kind = AwaitingDecision
        error = kind(self.message, error_class=self.error_class, severity=self.severity)
        error.trace = self.traceback
        return error


@dataclass(frozen=True)
class Skip:
    """The job type found nothing to do (`SkipJob`)."""

    reason: str

    def to_exception(self) -> SkipJob:
        return SkipJob(self.reason)


def trace_of(exc: BaseException) -> str:
    """`exc`'s formatted stack trace; a long one keeps its end (the frame that raised)."""
    text = "".join(traceback.format_exception(exc)).rstrip()
    if len(text) <= MAX_TRACEBACK:
        return text
    return "…" + text[-(MAX_TRACEBACK - 1) :]


Message = Progress | Result | Failure | Skip


def encode(message: Message) -> bytes:
    """One line. Output values that JSON lacks (dates, decimals) become their JSON form."""
    body: dict[str, Any]
    if isinstance(message, Progress):
        body = {"kind": "progress", "percent": message.percent, "message": message.message}
    elif isinstance(message, Result):
        body = {"kind": "result", "output": message.output, "warnings": message.warnings}
    elif isinstance(message, Skip):
        body = {"kind": "skip", "reason": message.reason}
    else:
        body = {"kind": "error", **asdict(message)}
    return json.dumps(body, default=to_jsonable_python).encode() + b"\n"


def decode(line: bytes) -> Message:
    try:
        body = json.loads(line)
        kind = body["kind"]
        if kind == "progress":
            percent = body.get("percent")
            return Progress(None if percent is None else float(percent), str(body["message"]))
        if kind == "result":
            output, warnings = body["output"], body.get("warnings") or []
            if not isinstance(output, dict):
                raise TypeError("output is not an object")
            if not isinstance(warnings, list):
                raise TypeError("warnings are not a list")
            return Result(output, [str(w) for w in warnings])
        if kind == "skip":
            return Skip(str(body["reason"]))
        if kind == "error":
            trace = body.get("traceback")
            severity = body.get("severity")
            if severity is not None and severity not in SEVERITIES:
                raise ValueError(f"unknown severity {severity!r}")
            return Failure(
                str(body["error_class"]),
                str(body["message"]),
                bool(body["retryable"]),
                None if trace is None else str(trace),
                severity,
                bool(body.get("awaiting_decision", False)),
            )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"unreadable worker message: {exc}") from None
    raise ProtocolError(f"unknown worker message kind {kind!r}")


def failure_of(exc: BaseException) -> Failure:
    """How a job's exception is reported, by the same rules as for jobs run in the executor:
    a `JobError` by its class and retryability, a timeout as the retryable `JobTimeout`,
    invalid input as `InvalidInput`, anything else as its class name, permanent, with its
    stack trace."""
    if isinstance(exc, JobError):
        awaiting = isinstance(exc, AwaitingDecision)
        return Failure(
            exc.error_class,
            str(exc),
            exc.retryable,
            severity=exc.severity,
            awaiting_decision=awaiting,
        )
    if isinstance(exc, TimeoutError):
        return Failure("JobTimeout", str(exc) or "timed out", True)
    if isinstance(exc, ValidationError):
        return Failure("InvalidInput", str(exc), False)
    return Failure(type(exc).__name__, str(exc), False, trace_of(exc))
