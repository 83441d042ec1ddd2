"""Request dependencies: the caller's principal and the services, as `Annotated` aliases."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from batch_api.adapters.keys import ApiKeyStore
from batch_api.adapters.views import ReadModels
from batch_api.api.problems import Problem
from batch_api.domain.principal import Principal
from batch_api.domain.ratelimit import KeyLimiter, Limit, retry_after
from batch_api.handlers.batches import BatchService
from batch_api.handlers.files import FileUploads
from batch_api.handlers.jobs import JobService
from batch_api.handlers.lifecycle import BatchLifecycle
from batch_api.handlers.live import LiveEvents


def _state(request: Request) -> object:
    return request.app.state


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        token = request.headers.get("x-api-key", "")
    if not token:
        raise Problem(
            401,
            "Unauthorized",
            "send an API key as `Authorization: Bearer <key>`",
            kind="unauthorized",
        )
    keys: ApiKeyStore = request.app.state.keys
    principal = await keys.resolve(token.strip())
    if principal is None:
        raise Problem(401, "Unauthorized", "the API key is unknown or revoked", kind="unauthorized")
    request.state.principal = principal  # for the audit log
    limit: Limit = principal.limit or request.app.state.default_limit
    limiter: KeyLimiter = request.app.state.limiter
    wait_s = limiter.take(principal.key_id, limit, time.monotonic())
    if wait_s > 0:
        raise Problem(
            429,
            "Too many requests",
            f"this key may make {limit.per_s:g} requests a second in bursts of {limit.burst}; "
            f"retry in {wait_s:.1f} s",
            kind="rate-limited",
            headers={"Retry-After": retry_after(wait_s)},
            retry_after_s=round(wait_s, 3),
        )
    return principal


async def batch_service(request: Request) -> BatchService:
    service: BatchService = request.app.state.batches
    return service


async def lifecycle(request: Request) -> BatchLifecycle:
    handler: BatchLifecycle = request.app.state.lifecycle
    return handler


async def job_service(request: Request) -> JobService:
    handler: JobService = request.app.state.jobs
    return handler


async def live_events(request: Request) -> LiveEvents:
    handler: LiveEvents = request.app.state.live
    return handler


async def file_uploads(request: Request) -> FileUploads:
    handler: FileUploads = request.app.state.files
    return handler


async def read_models(request: Request) -> ReadModels:
    models: ReadModels = request.app.state.read_models
    return models


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Batches = Annotated[BatchService, Depends(batch_service)]
Reads = Annotated[ReadModels, Depends(read_models)]
Lifecycle = Annotated[BatchLifecycle, Depends(lifecycle)]
Jobs = Annotated[JobService, Depends(job_service)]
Live = Annotated[LiveEvents, Depends(live_events)]
Files = Annotated[FileUploads, Depends(file_uploads)]
