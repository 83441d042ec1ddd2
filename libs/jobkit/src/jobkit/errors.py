"""Typed job failures: the retry decision follows the class."""

from __future__ import annotations

from typing import Literal, get_args

Limit = Literal["memory", "cpu", "time"]
# The same words as `contracts.vocabulary.Severity` (a job type needs no more than jobkit;
# a test keeps the two equal).
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)


class JobError(Exception):
    """Base of the typed job failures. `error_class` names the failure in reports;
    `severity` (low, medium, high, critical) says how bad it is, when the default does not
    (`medium` for a retryable failure, `high` for a permanent one)."""

    retryable: bool = False
    severity: Severity | None = None
    # Set by the executor on the error a job's worker process reported: where the exception
    # the job did not mean to raise was raised.
    trace: str | None = None

    def __init__(
        self, message: str, *, error_class: str | None = None, severity: Severity | None = None
    ) -> None:
        super().__init__(message)
        self.error_class = error_class or type(self).__name__
        if severity is not None:
            if severity not in SEVERITIES:
                raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
            self.severity = severity


class SkipJob(Exception):
    """Raised by a job type when its item needs no work (already done, filtered out, nothing
    to change): the job ends `skipped` with `reason` instead of completing or failing, and is
    not retried. Raise it before changing anything: a skipped job is not rolled back."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableError(JobError):
    """Worth another attempt: a timeout, a 5xx, a lost connection."""

    retryable = True


class PermanentError(JobError):
    """Another attempt would fail the same way: bad input, a 4xx, a missing resource."""

    retryable = False


class AwaitingDecision(JobError):
    """The job did what it could and waits for a person's decision on the rest (a conflict
    only a person can settle, recorded where they will find it). It ends failed, of `low`
    severity, marked `awaiting_decision`: not an error of the batch. `stop_on_error` does
    not stop for it, the batch's failed outcome (failure threshold, "no job completed") and
    so `rollback_on_failure` do not count it, and the decision runs it again (a job retry).
    Raise it after finishing everything else: the job runs whole again after a decision."""

    retryable = False
    severity: Severity | None = "low"


class ResourceLimitExceeded(PermanentError):
    """The job went past one of its batch's `resource_limits`: `memory` (`max_memory_mb`),
    `cpu` (`max_cpu_s`) or `time` (`timeout_s`). Permanent: the same job would exceed the same
    limit again. The host raises it; a job type does not."""

    def __init__(self, limit: Limit, message: str) -> None:
        super().__init__(f"{limit} limit exceeded: {message}", error_class="ResourceLimitExceeded")
        self.limit: Limit = limit
