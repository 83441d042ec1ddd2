"""Error answers become typed exceptions carrying the server's problem detail, whatever the
body looks like."""

from __future__ import annotations

import httpx
import pytest

from batchyard_cli.client import error_from_response
from batchyard_cli.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)

pytestmark = pytest.mark.unit


def answer(status: int, **kwargs: object) -> httpx.Response:
    request = httpx.Request("POST", "http://api/v1/batches")
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


def test_problem_json_is_carried_whole() -> None:
    body = {
        "type": "/problems/invalid-items",
        "title": "Invalid items",
        "status": 422,
        "detail": "1 item(s) do not match",
        "errors": [{"item": 0, "path": "seconds", "msg": "'soon' is not of type 'number'"}],
        "current_status": "running",
    }
    error = error_from_response(
        answer(422, json=body, headers={"content-type": "application/problem+json"})
    )
    assert isinstance(error, InvalidRequest)
    assert error.problem.type == "/problems/invalid-items"
    assert error.problem.errors[0]["path"] == "seconds"
    assert error.problem.extra == {"current_status": "running"}
    assert (error.method, error.path) == ("POST", "/v1/batches")
    assert error.message == "Invalid items (422): 1 item(s) do not match"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (429, RateLimited),
        (502, ServerError),
    ],
)
def test_status_picks_the_exception(status: int, kind: type[Exception]) -> None:
    assert isinstance(error_from_response(answer(status, json={"detail": "x"})), kind)


def test_a_body_that_is_not_a_problem_still_reads_well() -> None:
    error = error_from_response(answer(502, text="<html><body>Bad   gateway\n</body></html>"))
    assert isinstance(error, ServerError)
    assert error.problem.title == "Bad gateway"
    assert error.problem.detail == "<html><body>Bad gateway </body></html>"
    empty = error_from_response(answer(503))
    assert empty.message == "Service unavailable (503)"
