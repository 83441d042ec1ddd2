"""Errors as RFC 9457 problem details: `type`, `title`, `status`, `detail` (+ `errors`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind or title.lower().replace(" ", "-")
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str,
    kind: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"/problems/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _page_for_browser(request: Request, status: int) -> Response | None:
    """The dashboard's "not found" page, for a browser navigating to a page that does not
    exist (a GET outside `/v1` that accepts HTML); None for everything else."""
    page = getattr(request.app.state, "not_found_page", None)
    if (
        status != 404
        or page is None
        or request.method != "GET"
        or request.url.path.startswith("/v1/")
        or "text/html" not in request.headers.get("accept", "")
    ):
        return None
    response: Response = page(request)
    return response


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        page = _page_for_browser(request, exc.status)
        if page is not None:
            return page
        return problem_response(
            exc.status, exc.title, exc.detail, exc.kind, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                400,
                "Malformed JSON",
                "the request body is not valid JSON",
                "malformed-json",
                errors=errors,
            )
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        return problem_response(422, "Invalid request", detail, "invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        page = _page_for_browser(request, exc.status_code)
        if page is not None:
            return page
        title = {
            401: "Unauthorized",
            404: "Not found",
            405: "Method not allowed",
            413: "Payload too large",
        }.get(exc.status_code, "HTTP error")
        return problem_response(
            exc.status_code,
            title,
            str(exc.detail),
            title.lower().replace(" ", "-"),
            headers=getattr(exc, "headers", None),
        )


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error as RFC 9457 problem details; some problems carry more fields "
    "(`errors`, `batch_status`, `max_bytes`, `retry_after_s`...).",
    "type": "object",
    "properties": {
        "type": {"type": "string", "examples": ["/problems/invalid-request"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}
# What any /v1 operation may answer besides its documented success.
PROBLEM_STATUSES = {
    "400": "Malformed request (e.g. a body that is not JSON)",
    "401": "No API key, or an unknown or revoked one",
    "403": "The key's role may not do this",
    "404": "No such resource in the caller's tenant",
    "409": "The resource's state does not allow this now",
    "410": "Gone: an archived batch's per-job records were removed by retention",
    "413": "The request body is over the size cap",
    "415": "The body's content type is not accepted",
    "422": "The request does not validate",
    "429": "The key is over its rate limit (see Retry-After)",
}


def document_problems(app: FastAPI) -> None:
    """Makes the OpenAPI document say what the API does on errors: every `/v1` operation may
    answer the statuses above with `application/problem+json` (FastAPI documents its own
    422 shape as `application/json`, which this API never sends)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in PROBLEM_STATUSES.items():
                    responses[status] = {"description": description, "content": problem}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
