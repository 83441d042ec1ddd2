"""The process exit codes: one per kind of outcome, so scripts can branch without parsing text."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from batchyard_cli.errors import (
    BatchyardError,
    Conflict,
    Forbidden,
    InputError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    Unreachable,
)


class ExitCode(IntEnum):
    OK = 0
    UNSUCCESSFUL = 1
    """`monitor`: a batch ended other than `completed`."""
    USAGE = 2
    """A wrong command, option or argument; unusable local input or config."""
    NOT_FOUND = 3
    AUTH = 4
    """401 (no key, unknown key) or 403 (the key's role may not)."""
    REJECTED = 5
    """The server refused the request: invalid (400/413/422), conflict with the state (409),
    not offered by this server (405)."""
    SERVER = 6
    """The server failed (5xx), is rate limiting (429), or cannot be reached."""
    INTERRUPTED = 130


EXIT_CODES_HELP = """\
Exit codes: 0 ok · 1 a monitored batch ended other than completed · 2 usage error (bad \
option, argument, input file or config) · 3 not found · 4 unauthorized or forbidden · 5 \
rejected by the server (invalid 400/422, conflict 409) · 6 server error, rate limited or \
unreachable · 130 interrupted."""

SUCCESSFUL_FINAL_STATUSES = frozenset({"completed"})
FINAL_STATUSES = frozenset(
    {
        "completed",
        "completed_with_errors",
        "failed",
        "cancelled",
        "rolled_back",
        "rollback_failed",
        "archived",
    }
)


def for_error(error: BatchyardError) -> ExitCode:
    """The exit code a command ends with when it fails with `error`."""
    match error:
        case InputError():
            return ExitCode.USAGE
        case NotFound():
            return ExitCode.NOT_FOUND
        case Unauthorized() | Forbidden():
            return ExitCode.AUTH
        case InvalidRequest() | Conflict() | MethodNotAllowed():
            return ExitCode.REJECTED
        case ServerError() | RateLimited() | Unreachable():
            return ExitCode.SERVER
    return ExitCode.SERVER


def for_final_statuses(
    statuses: Iterable[str], succeeded: frozenset[str] = SUCCESSFUL_FINAL_STATUSES
) -> ExitCode:
    """0 when every batch ended in a status of `succeeded` (by default: completed cleanly),
    else 1 (completed_with_errors, failed, cancelled, rolled back...)."""
    if all(status in succeeded for status in statuses):
        return ExitCode.OK
    return ExitCode.UNSUCCESSFUL


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The code to end with after several independent operations: the highest one."""
    return max(codes, default=ExitCode.OK)
