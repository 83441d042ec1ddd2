"""Typed job failures: the retry decision follows the class."""

from __future__ import annotations


class JobError(Exception):
    """Base of the typed job failures. `error_class` names the failure in reports."""

    retryable: bool = False

    def __init__(self, message: str, *, error_class: str | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class or type(self).__name__


class RetryableError(JobError):
    """Worth another attempt: a timeout, a 5xx, a lost connection."""

    retryable = True


class PermanentError(JobError):
    """Another attempt would fail the same way: bad input, a 4xx, a missing resource."""

    retryable = False
