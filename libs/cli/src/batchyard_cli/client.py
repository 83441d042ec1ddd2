"""A small typed client of the Batchyard HTTP API (`/v1`): one method per endpoint.

Every error answer becomes an `ApiError` subclass carrying the server's problem detail; no
answer at all (refused, timed out, dropped) becomes `Unreachable`. Nothing here prints.

Requests that make something (a batch, a chunk of items, a consolidation) always carry an
`Idempotency-Key`, a fresh one unless the caller gives theirs, and are sent again when no
answer came: the key makes the server answer a repeat with what the first one made, so a
lost answer never makes a second batch."""

from __future__ import annotations

import json
import mimetypes
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, Self, cast

import httpx

from batchyard_cli import __version__
from batchyard_cli.errors import (
    ApiError,
    BatchyardError,
    InputError,
    Problem,
    ServerError,
    Unreachable,
    api_error,
)
from batchyard_cli.resources import (
    ActionAccepted,
    ApiKey,
    Batch,
    BatchAction,
    CreatedKey,
    ItemsAdded,
    Job,
    JobType,
    Page,
    Report,
    Role,
)
from batchyard_cli.sse import ServerEvent, parse

MAX_PAGE = 500
EVENTS_READ_TIMEOUT_S = 60.0
"""The server sends a heartbeat comment every 15 s; four missed ones mean the stream is dead."""
REPEAT_WAITS_S = (0.5, 1.0, 2.0, 4.0)
"""The pauses before each repeat of a request with an `Idempotency-Key` that got no answer, a
502/503/504, or a 409 saying its first try is still running (7.5 s in all)."""
IN_PROGRESS = "/problems/request-in-progress"
NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout)
"""Failures before a request was sent: the server cannot have received it."""
MAX_KEY_LENGTH = 200
"""The API's limit on an `Idempotency-Key`."""


def new_idempotency_key() -> str:
    """A key no other request has: for a request whose caller gave none."""
    return f"cli-{uuid.uuid4().hex}"


def _keyed(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key or new_idempotency_key()}


class StreamUnavailable(BatchyardError):
    """The server has no event stream here (an older API): callers fall back to polling."""


@dataclass(frozen=True)
class BatchFilter:
    """Filters of `GET /v1/batches`; None leaves a filter out."""

    status: str | None = None
    priority: str | None = None
    job_type: str | None = None
    tag: str | None = None
    owner: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    q: str | None = None
    template_id: str | None = None
    schedule_id: str | None = None

    def params(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed error for an error response, from its problem+json body when it has one."""
    body: object = None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    return api_error(
        Problem.from_body(response.status_code, body, response.text),
        response.request.method,
        response.request.url.path,
    )


class BatchyardClient:
    """A connection to one Batchyard API with one key. Use as a context manager (or `close`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"User-Agent": f"batchyard-cli/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- batches ---------------------------------------------------------------------------

    def create_batch(self, body: Mapping[str, Any], idempotency_key: str | None = None) -> Batch:
        """`POST /v1/batches`: with `items` the batch is submitted at once; with
        `draft: true` and no items it waits in `draft` for `add_items` and `submit_batch`.
        A repeat with the same key and body answers with the batch the first one made."""
        headers = _keyed(idempotency_key)
        return cast(Batch, self._json("POST", "/v1/batches", json=body, headers=headers))

    def add_items(
        self,
        batch_id: str,
        items: Sequence[Mapping[str, Any]],
        idempotency_key: str | None = None,
    ) -> ItemsAdded:
        """`POST /v1/batches/{id}/items` as NDJSON: adds items to a draft or uploading batch.
        A repeat with the same key and items adds nothing and answers as the first did."""
        content = b"".join(json.dumps(item).encode() + b"\n" for item in items)
        headers = {"Content-Type": "application/x-ndjson", **_keyed(idempotency_key)}
        return cast(
            ItemsAdded,
            self._json("POST", f"/v1/batches/{batch_id}/items", content=content, headers=headers),
        )

    def add_files(
        self, batch_id: str, paths: Sequence[Path], idempotency_key: str | None = None
    ) -> ItemsAdded:
        """`POST /v1/batches/{id}/items` as `multipart/form-data`: stores the files and adds
        one item per file (`files.extract_metadata` items) to a draft or uploading batch."""
        with ExitStack() as stack:
            parts = [
                ("files", (path.name, stack.enter_context(path.open("rb")), media_type_of(path)))
                for path in paths
            ]
            return cast(
                ItemsAdded,
                self._json(
                    "POST",
                    f"/v1/batches/{batch_id}/items",
                    files=parts,
                    headers=_keyed(idempotency_key),
                ),
            )

    def submit_batch(self, batch_id: str) -> Batch:
        """`POST /v1/batches/{id}/submit`: queues a draft or uploaded batch."""
        return cast(Batch, self._json("POST", f"/v1/batches/{batch_id}/submit"))

    def list_batches(
        self, filters: BatchFilter | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Batch]:
        """`GET /v1/batches`: one page, newest first."""
        params: dict[str, str | int] = {**(filters or BatchFilter()).params(), "limit": limit}
        if cursor:
            params["cursor"] = cursor
        return cast(Page[Batch], self._json("GET", "/v1/batches", params=params))

    def iter_batches(
        self, filters: BatchFilter | None = None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Batch], str | None]:
        """Up to `limit` batches over as many pages as needed, and the cursor after them."""
        found: list[Batch] = []
        while len(found) < limit:
            page = self.list_batches(filters, min(MAX_PAGE, limit - len(found)), cursor)
            found.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor or not page["items"]:
                break
        return found, cursor

    def get_batch(self, batch_id: str) -> Batch:
        """`GET /v1/batches/{id}`: the batch with its progress."""
        return cast(Batch, self._json("GET", f"/v1/batches/{batch_id}"))

    def update_batch(self, batch_id: str, changes: Mapping[str, Any]) -> Batch:
        """`PATCH /v1/batches/{id}`: name, description, tags, priority, deadline, config."""
        return cast(Batch, self._json("PATCH", f"/v1/batches/{batch_id}", json=changes))

    def delete_batch(self, batch_id: str) -> None:
        """`DELETE /v1/batches/{id}`: only a batch in a terminal state."""
        self._request("DELETE", f"/v1/batches/{batch_id}")

    def batch_action(self, batch_id: str, action: BatchAction) -> ActionAccepted:
        """`POST /v1/batches/{id}/actions/{action}` for start, pause, resume, cancel, retry,
        archive (rollback and duplicate have their own methods: their answers differ)."""
        return cast(ActionAccepted, self._json("POST", f"/v1/batches/{batch_id}/actions/{action}"))

    def rollback(
        self,
        batch_id: str,
        *,
        dry_run: bool = False,
        job_ids: Sequence[str] | None = None,
        force: bool = False,
    ) -> ActionAccepted:
        """`POST /v1/batches/{id}/actions/rollback`; a dry run answers with the `plan`."""
        body: dict[str, Any] = {"dry_run": dry_run, "job_ids": list(job_ids) if job_ids else None}
        if force:
            body["force"] = True
        return cast(
            ActionAccepted,
            self._json("POST", f"/v1/batches/{batch_id}/actions/rollback", json=body),
        )

    def rollback_check(self, batch_id: str, check_id: str) -> dict[str, Any]:
        """`GET /v1/batches/{id}/rollback-checks/{check_id}`: a dry run's check."""
        return self._json("GET", f"/v1/batches/{batch_id}/rollback-checks/{check_id}")

    def duplicate(self, batch_id: str) -> Batch:
        """`POST /v1/batches/{id}/actions/duplicate`: the new batch."""
        return cast(Batch, self._json("POST", f"/v1/batches/{batch_id}/actions/duplicate"))

    # -- jobs ------------------------------------------------------------------------------

    def list_jobs(
        self, batch_id: str, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Job]:
        """`GET /v1/batches/{id}/jobs`: one page of jobs, by index."""
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return cast(Page[Job], self._json("GET", f"/v1/batches/{batch_id}/jobs", params=params))

    def get_job(self, job_id: str) -> Job:
        """`GET /v1/batches/{batch_id}/jobs/{job_id}` (the batch id is the job id's prefix)."""
        return cast(Job, self._json("GET", _job_path(job_id)))

    def retry_job(self, job_id: str) -> dict[str, Any]:
        """`POST .../jobs/{job_id}/retry`."""
        return self._json("POST", f"{_job_path(job_id)}/retry")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """`POST .../jobs/{job_id}/cancel`."""
        return self._json("POST", f"{_job_path(job_id)}/cancel")

    # -- live ------------------------------------------------------------------------------

    @contextmanager
    def events(self, batch_id: str | None = None) -> Iterator[Iterator[ServerEvent]]:
        """`GET /v1/batches/{id}/events`, or `GET /v1/events` for every visible batch: the
        server-sent events as they arrive. `StreamUnavailable` when the server has none (a 404
        or 405: callers read the batch first, so a 404 here means a missing route)."""
        path = f"/v1/batches/{batch_id}/events" if batch_id else "/v1/events"
        timeout = httpx.Timeout(self.timeout, read=EVENTS_READ_TIMEOUT_S)
        try:
            with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as response:
                if response.status_code in (404, 405):
                    raise StreamUnavailable(f"{self.base_url} has no event stream at {path}")
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    raise StreamUnavailable(f"{path} did not answer with an event stream")
                yield self._guarded(parse(response.iter_lines()))
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _guarded(self, events: Iterator[ServerEvent]) -> Iterator[ServerEvent]:
        try:
            yield from events
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    # -- reports ---------------------------------------------------------------------------

    def report(self, batch_id: str) -> Report:
        """`GET /v1/batches/{id}/report` as JSON."""
        return self._json("GET", f"/v1/batches/{batch_id}/report")

    def report_csv(self, batch_id: str) -> str:
        """`GET /v1/batches/{id}/report?format=csv`."""
        response = self._request(
            "GET",
            f"/v1/batches/{batch_id}/report",
            params={"format": "csv"},
            headers={"Accept": "text/csv"},
        )
        return response.text

    def export(
        self,
        batch_id: str,
        sink: IO[bytes],
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> int:
        """`GET /v1/batches/{id}/export`: streams the ZIP into `sink`; returns its size.
        `on_progress(written, total)` is called per chunk (total None when not announced)."""
        path = f"/v1/batches/{batch_id}/export"
        try:
            with self._http.stream("GET", path, headers={"Accept": "application/zip"}) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                length = response.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                written = 0
                for chunk in response.iter_bytes():
                    sink.write(chunk)
                    written += len(chunk)
                    if on_progress:
                        on_progress(written, total)
                return written
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    # -- keys and job types ----------------------------------------------------------------

    def create_key(self, name: str, role: Role) -> CreatedKey:
        """`POST /v1/keys` (admin): the new key, shown only in this answer."""
        return cast(CreatedKey, self._json("POST", "/v1/keys", json={"name": name, "role": role}))

    def list_keys(self) -> list[ApiKey]:
        """`GET /v1/keys` (admin)."""
        return cast(list[ApiKey], _items(self._json_any("GET", "/v1/keys")))

    def delete_key(self, key_id: str) -> None:
        """`DELETE /v1/keys/{id}` (admin): revokes the key."""
        self._request("DELETE", f"/v1/keys/{key_id}")

    def create_key_with(self, body: Mapping[str, Any]) -> CreatedKey:
        """`POST /v1/keys` (admin) with every field (user, rate_limit...)."""
        return cast(CreatedKey, self._json("POST", "/v1/keys", json=body))

    # -- templates -------------------------------------------------------------------------

    def list_templates(
        self,
        *,
        category: str | None = None,
        q: str | None = None,
        owner: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[dict[str, Any]]:
        """`GET /v1/templates`: the templates the key may see, newest first."""
        params = _params(category=category, q=q, owner=owner, limit=limit, cursor=cursor)
        return cast(Page[dict[str, Any]], self._json("GET", "/v1/templates", params=params))

    def template_categories(self) -> list[dict[str, Any]]:
        """`GET /v1/templates/categories`: `[{category, templates}]`."""
        return cast(list[dict[str, Any]], _items(self._json_any("GET", "/v1/templates/categories")))

    def get_template(self, template_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/templates/{_segment(template_id)}")

    def template_from_batch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v1/templates/from-batch`: a template like an existing batch."""
        return self._json("POST", "/v1/templates/from-batch", json=body)

    def webhook_deliveries(self, batch_id: str) -> list[dict[str, Any]]:
        """`GET /v1/batches/{id}/webhooks`: the notices of the batch's webhooks."""
        found = self._json_any("GET", f"/v1/batches/{_segment(batch_id)}/webhooks")
        return cast(list[dict[str, Any]], found)

    def create_template(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/templates", json=body)

    def update_template(self, template_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", f"/v1/templates/{_segment(template_id)}", json=changes)

    def delete_template(self, template_id: str) -> None:
        self._request("DELETE", f"/v1/templates/{_segment(template_id)}")

    def instantiate_template(
        self,
        template_id: str,
        overrides: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> Batch:
        """`POST /v1/templates/{id}/instantiate`: the new (submitted) batch."""
        headers = _keyed(idempotency_key)
        path = f"/v1/templates/{_segment(template_id)}/instantiate"
        return cast(Batch, self._json("POST", path, json=overrides, headers=headers))

    # -- schedules -------------------------------------------------------------------------

    def list_schedules(
        self,
        *,
        enabled: bool | None = None,
        q: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[dict[str, Any]]:
        """`GET /v1/schedules`: the schedules the key may see, newest first."""
        flag = None if enabled is None else ("true" if enabled else "false")
        params = _params(enabled=flag, q=q, limit=limit, cursor=cursor)
        return cast(Page[dict[str, Any]], self._json("GET", "/v1/schedules", params=params))

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/schedules/{_segment(schedule_id)}")

    def create_schedule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/schedules", json=body)

    def update_schedule(self, schedule_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", f"/v1/schedules/{_segment(schedule_id)}", json=changes)

    def set_schedule_enabled(self, schedule_id: str, enabled: bool) -> dict[str, Any]:
        """`POST /v1/schedules/{id}/enable` or `/disable`."""
        verb = "enable" if enabled else "disable"
        return self._json("POST", f"/v1/schedules/{_segment(schedule_id)}/{verb}")

    def trigger_schedule(self, schedule_id: str) -> dict[str, Any]:
        """`POST /v1/schedules/{id}/trigger`: the run (outcome created, skipped or failed)."""
        return self._json("POST", f"/v1/schedules/{_segment(schedule_id)}/trigger")

    def schedule_runs(self, schedule_id: str) -> list[dict[str, Any]]:
        """`GET /v1/schedules/{id}/runs`: the last 50 runs, newest first."""
        path = f"/v1/schedules/{_segment(schedule_id)}/runs"
        return cast(list[dict[str, Any]], _items(self._json_any("GET", path)))

    def delete_schedule(self, schedule_id: str) -> None:
        self._request("DELETE", f"/v1/schedules/{_segment(schedule_id)}")

    # -- the template library -------------------------------------------------------------

    def list_library(
        self,
        *,
        category: str | None = None,
        tag: str | None = None,
        status: str | None = None,
        q: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[dict[str, Any]]:
        """`GET /v1/library/templates`: the tenant's library templates, by id."""
        params = _params(category=category, tag=tag, status=status, q=q, limit=limit, cursor=cursor)
        return cast(Page[dict[str, Any]], self._json("GET", "/v1/library/templates", params=params))

    def get_library_template(self, template_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/library/templates/{_segment(template_id)}")

    def update_library_template(
        self, template_id: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`PATCH /v1/library/templates/{id}`: the fields given change (a document written
        outside the API gets what it lacked to be whole, when the changes give it)."""
        path = f"/v1/library/templates/{_segment(template_id)}"
        return self._json("PATCH", path, json=changes)

    def delete_library_template(self, template_id: str) -> None:
        self._request("DELETE", f"/v1/library/templates/{_segment(template_id)}")

    def import_library(self, templates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """`POST /v1/library/templates/import`: up to 10,000 templates, all or none."""
        return self._json("POST", "/v1/library/templates/import", json={"templates": templates})

    def plan_consolidation(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v1/library/consolidations/plan`: what a consolidation would do."""
        return self._json("POST", "/v1/library/consolidations/plan", json=body)

    def start_consolidation(
        self, body: Mapping[str, Any], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """`POST /v1/library/consolidations`: the consolidation as a new batch (a repeat with
        the same key and request: the batch the first one made, `plan` null)."""
        headers = _keyed(idempotency_key)
        return self._json("POST", "/v1/library/consolidations", json=body, headers=headers)

    def conflicts(self, batch_id: str, status: str | None = None) -> list[dict[str, Any]]:
        """`GET /v1/library/conflicts`: what a consolidation batch parked, oldest first."""
        params = _params(batch_id=batch_id, status=status)
        body = self._json_any("GET", "/v1/library/conflicts", params=params)
        return cast(list[dict[str, Any]], _items(body))

    def decide_conflict(self, conflict_id: str, keep: str) -> dict[str, Any]:
        path = f"/v1/library/conflicts/{_segment(conflict_id)}/decision"
        return self._json("POST", path, json={"keep": keep})

    # -- many batches, analytics, audit ----------------------------------------------------

    def bulk(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v1/batches/bulk`: one action on many batches, a result per batch."""
        return self._json("POST", "/v1/batches/bulk", json=body)

    def analytics(self, batch_id: str) -> dict[str, Any]:
        """`GET /v1/batches/{id}/analytics`: durations, throughput, errors, retries."""
        return self._json("GET", f"/v1/batches/{_segment(batch_id)}/analytics")

    def stats(self, since: str | None = None, until: str | None = None) -> dict[str, Any]:
        """`GET /v1/stats`: the tenant's batches created in [since, until)."""
        return self._json("GET", "/v1/stats", params=_params(since=since, until=until))

    def audit(
        self,
        *,
        user: str | None = None,
        resource: str | None = None,
        method: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[dict[str, Any]]:
        """`GET /v1/audit` (admin): state-changing calls, newest first."""
        params = _params(
            user=user,
            resource=resource,
            method=method,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
        return cast(Page[dict[str, Any]], self._json("GET", "/v1/audit", params=params))

    def job_types(self) -> list[JobType]:
        """`GET /v1/job-types`: the job types executors serve, with their input schemas."""
        return cast(list[JobType], _items(self._json_any("GET", "/v1/job-types")))

    # -- retention -------------------------------------------------------------------------

    def retention_policy(self) -> dict[str, Any]:
        """`GET /v1/retention` (admin): the tenant's retention policy."""
        return self._json("GET", "/v1/retention")

    def set_retention_policy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /v1/retention` (admin): replaces the policy."""
        return self._json("PUT", "/v1/retention", json=body)

    def run_retention(self, *, dry_run: bool, wait_s: int) -> dict[str, Any]:
        """`POST /v1/retention/run` (admin): a run now, waiting up to `wait_s` for it."""
        return self._json(
            "POST", "/v1/retention/run", params={"wait_s": wait_s}, json={"dry_run": dry_run}
        )

    # -- plumbing --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        files: list[tuple[str, tuple[str, BinaryIO, str]]] | None = None,
    ) -> httpx.Response:
        # Only a request with an Idempotency-Key is sent again: a repeat of it cannot make
        # anything twice. (Multipart files are read from their start on each try.)
        waits = iter(REPEAT_WAITS_S if headers and "Idempotency-Key" in headers else ())
        received = False  # whether any try may have reached the server
        while True:
            try:
                response = self._http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    content=content,
                    headers=headers,
                    files=files,
                )
            except httpx.TransportError as exc:
                received = received or not isinstance(exc, NOT_CONNECTED)
                if (wait := next(waits, None)) is None:
                    raise self._unreachable(exc, received) from exc
                self._sleep(wait)
                continue
            if not response.is_error:
                return response
            error = error_from_response(response)
            if _worth_repeating(error) and (wait := next(waits, None)) is not None:
                self._sleep(wait)
                continue
            raise error

    def _json_any(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            kind = response.headers.get("content-type", "no content type")
            raise ServerError(
                Problem(
                    status=response.status_code,
                    title="Unexpected answer",
                    detail=f"expected JSON from {method} {path}, got {kind}; "
                    f"is {self.base_url} a Batchyard API?",
                ),
                method,
                path,
            ) from None

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self._json_any(method, path, **kwargs)
        if not isinstance(body, dict):
            raise ServerError(
                Problem(200, "Unexpected answer", f"{path}: not a JSON object"),
                method,
                path,
            )
        return body

    def _unreachable(self, exc: httpx.TransportError, received: bool = True) -> Unreachable:
        if isinstance(exc, httpx.TimeoutException):
            return Unreachable(
                f"{self.base_url} did not answer in time ({type(exc).__name__})",
                maybe_received=received,
            )
        reason = str(exc) or type(exc).__name__
        return Unreachable(f"cannot reach {self.base_url}: {reason}", maybe_received=received)


def _worth_repeating(error: ApiError) -> bool:
    """An answer a keyed request may get a better one to by asking again: a proxy or server
    that could not answer now, or the request's own first try still running."""
    problem = error.problem
    return problem.status in (502, 503, 504) or (
        problem.status == 409 and problem.type == IN_PROGRESS
    )


def media_type_of(path: Path) -> str:
    """The media type a file's name suggests (the server sniffs the content itself)."""
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _job_path(job_id: str) -> str:
    batch_id, dot, index = job_id.rpartition(".")
    if not dot or not batch_id or not index.isdigit():
        raise InputError(f"{job_id!r} is not a job id (<batch id>.<index>, e.g. b_0123.7)")
    return f"/v1/batches/{batch_id}/jobs/{job_id}"


def _params(**values: str | int | None) -> dict[str, str | int]:
    """Query parameters without the unset ones."""
    return {k: v for k, v in values.items() if v is not None}


def _segment(identifier: str) -> str:
    """An id as one path segment: ids never hold a slash, and one would reach another route."""
    if not identifier or "/" in identifier or identifier in (".", ".."):
        raise InputError(f"{identifier!r} is not an id")
    return identifier


def _items(body: Any) -> list[Any]:
    """A list answer, bare or wrapped as {"items": [...]}."""
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        return cast(list[Any], body["items"])
    if isinstance(body, list):
        return body
    raise ServerError(Problem(200, "Unexpected answer", "expected a list"))


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """`items` in lists of at most `size`."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
