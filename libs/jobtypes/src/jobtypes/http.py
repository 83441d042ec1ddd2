"""`http.request`: one HTTP call per item, with the failure classes retries need.

5xx, 429, connection errors and timeouts are retryable; other 4xx and unexpected statuses are
permanent. Targets that resolve to private, loopback, link-local or otherwise non-public
addresses are refused (`TargetNotAllowed`) unless the operator allow-lists them with
`BATCHYARD_JOBTYPE_HTTP_ALLOW_HOSTS` (comma-separated host names, addresses or networks, e.g.
`127.0.0.1,10.0.0.0/8,api.internal`). Redirects are not followed: a redirect could lead to a
refused target, so a 3xx is returned as the result (or refused by `expected_status`)."""

from __future__ import annotations

import time
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.vocabulary import http_url
from jobkit import JobContext, JobType, PermanentError, Resources, RetryableError
from servicekit import netguard
from servicekit.netguard import Address, AllowList, refused_address

MAX_BODY_BYTES = 10 * 1024 * 1024


class HttpRequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    url: str = Field(min_length=8, max_length=4000, description="An http:// or https:// URL.")
    headers: dict[str, str] = Field(default_factory=dict, max_length=100)
    body: str | dict[str, Any] | list[Any] | None = Field(
        default=None, description="A string is sent as is; JSON otherwise."
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    expected_status: list[int] | None = Field(
        default=None, description="Statuses that count as success; default any 2xx."
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        return http_url(url)


class HttpRequestOutput(BaseModel):
    status: int
    elapsed_ms: float
    size_bytes: int
    content_type: str | None = None


def check_target(host: str, addresses: list[Address], allow: AllowList) -> None:
    """Raises `PermanentError(TargetNotAllowed)` if any address is non-public and not
    allow-listed."""
    refused = refused_address(host, addresses, allow)
    if refused is not None:
        raise PermanentError(
            f"{host} resolves to {refused}, a non-public address; allow-list it with "
            "BATCHYARD_JOBTYPE_HTTP_ALLOW_HOSTS to call it",
            error_class="TargetNotAllowed",
        )


async def resolve(host: str, port: int) -> list[Address]:
    try:
        return await netguard.resolve(host, port)
    except netguard.ResolveError as exc:
        raise RetryableError(str(exc), error_class="DnsFailure") from exc


class HttpRequest(JobType):
    name = "http.request"
    Input = HttpRequestInput
    Output = HttpRequestOutput
    description = (
        "Calls a URL; 5xx, 429, timeouts and connection errors are retried, other 4xx are not."
    )

    def __init__(self) -> None:
        self.allow = AllowList([])
        self._client: httpx.AsyncClient | None = None

    async def setup(self, resources: Resources) -> None:
        self.allow = AllowList.parse(resources.settings.get("http_allow_hosts", ""))

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client

    async def run(self, item: HttpRequestInput, ctx: JobContext) -> dict[str, Any]:
        parts = urlsplit(item.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        check_target(host, await resolve(host, port), self.allow)
        content, json_body = (item.body, None) if isinstance(item.body, str) else (None, item.body)
        started = time.perf_counter()
        try:
            async with self.client.stream(
                item.method,
                item.url,
                headers=item.headers,
                content=content,
                json=json_body,
                timeout=item.timeout_s,
            ) as response:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        break
        except httpx.TimeoutException as exc:
            raise RetryableError(
                f"{item.method} {item.url}: no answer within {item.timeout_s}s",
                error_class="HttpTimeout",
            ) from exc
        except httpx.TransportError as exc:
            raise RetryableError(
                f"{item.method} {item.url}: {type(exc).__name__}: {exc}",
                error_class="HttpConnectionError",
            ) from exc
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        classify(item, response.status_code)
        return HttpRequestOutput(
            status=response.status_code,
            elapsed_ms=elapsed_ms,
            size_bytes=size,
            content_type=response.headers.get("content-type"),
        ).model_dump()


def classify(item: HttpRequestInput, status: int) -> None:
    """Raises the failure a status means for this request; returns if it is a success."""
    expected = item.expected_status
    if (expected is not None and status in expected) or (expected is None and status < 300):
        return
    where = f"{item.method} {item.url} answered {status}"
    if status >= 500 or status == 429:
        raise RetryableError(where, error_class=f"Http{status}")
    if 400 <= status < 500:
        raise PermanentError(where, error_class=f"Http{status}")
    raise PermanentError(f"{where}, expected {expected or '2xx'}", error_class="UnexpectedStatus")
