"""What can go wrong, as typed exceptions: the server's problem details (RFC 9457) become one
`ApiError` subclass per kind of answer; a server that cannot be reached is `Unreachable`; bad
local input (a spec file, an items file, the config) is `InputError`. `exit_codes` maps each
to the process exit code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """An `application/problem+json` body: `type`, `title`, `status`, `detail`, `errors`."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    errors: Sequence[Mapping[str, Any]] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, status: int, body: object, fallback_text: str = "") -> Problem:
        """The problem a response carries; a body that is not one (a proxy's HTML page, an
        empty body) still gives a readable problem from the status and the text."""
        if isinstance(body, Mapping):
            errors = body.get("errors")
            known = {"status", "title", "detail", "type", "errors"}
            return cls(
                status=status,
                title=str(body.get("title") or _reason(status)),
                detail=str(body.get("detail") or ""),
                type=str(body.get("type") or "about:blank"),
                errors=[e for e in errors if isinstance(e, Mapping)]
                if isinstance(errors, list)
                else (),
                extra={k: v for k, v in body.items() if k not in known},
            )
        text = " ".join(fallback_text.split())
        return cls(status=status, title=_reason(status), detail=text[:300])


def _reason(status: int) -> str:
    reasons = {
        400: "Bad request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not found",
        405: "Method not allowed",
        409: "Conflict",
        413: "Request too large",
        422: "Invalid request",
        429: "Too many requests",
        500: "Internal server error",
        502: "Bad gateway",
        503: "Service unavailable",
        504: "Gateway timeout",
    }
    return reasons.get(status, f"HTTP {status}")


class BatchyardError(Exception):
    """Anything the CLI reports as one message and an exit code instead of a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(BatchyardError):
    """Local input the CLI cannot use: a spec or items file, a flag's value, the config."""


class Unreachable(BatchyardError):
    """No HTTP answer: connection refused, DNS failure, timeout, a dropped connection.
    `maybe_received`: a request may have reached the server (it was sent, and no answer
    came), rather than never having been connected."""

    def __init__(self, message: str, *, maybe_received: bool = True) -> None:
        super().__init__(message)
        self.maybe_received = maybe_received


class ApiError(BatchyardError):
    """The server answered with an error status; `problem` holds its problem detail."""

    def __init__(self, problem: Problem, method: str = "", path: str = "") -> None:
        summary = f"{problem.title} ({problem.status})"
        super().__init__(f"{summary}: {problem.detail}" if problem.detail else summary)
        self.problem = problem
        self.method = method
        self.path = path

    @property
    def status(self) -> int:
        return self.problem.status


class InvalidRequest(ApiError):
    """400, 413, 422: the server refused the request's content."""


class Unauthorized(ApiError):
    """401: no key, or a key the server does not know."""


class Forbidden(ApiError):
    """403: the key's role may not do this."""


class NotFound(ApiError):
    """404: no such batch, job or key (or another tenant's)."""


class MethodNotAllowed(ApiError):
    """405: this server does not offer the operation (an older API)."""


class Conflict(ApiError):
    """409: not allowed in the resource's current state (the detail says which state)."""


class RateLimited(ApiError):
    """429: too many requests; try again later."""


class ServerError(ApiError):
    """5xx or an unexpected status: the server failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
}


def api_error(problem: Problem, method: str = "", path: str = "") -> ApiError:
    """The `ApiError` subclass for the problem's status."""
    kind = _BY_STATUS.get(problem.status)
    if kind is None:
        kind = InvalidRequest if 400 <= problem.status < 500 else ServerError
    return kind(problem, method, path)
