"""Making a batch: the request body from a spec and flags (flags win), and the upload of
items in chunks into a draft batch, with a progress bar.

Up to `MAX_INLINE_ITEMS` items given inline go in the one `POST /v1/batches` (atomic: the
batch exists with all its items or not at all). More items, or items from files, go through
the draft lifecycle: create a draft, `POST .../items` chunk by chunk, then submit.

Every request that makes something carries an `Idempotency-Key`: the command's (given with
`--idempotency-key`, else a fresh one), and for chunk n of an upload that key with `#n`. So
the same command run again with the same key finds the batch the first run made, and its
chunks that arrived are answered, not added twice: an upload cut short is finished by
running it again."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from batchyard_cli.client import MAX_KEY_LENGTH, BatchyardClient, chunks, new_idempotency_key
from batchyard_cli.errors import BatchyardError, InputError, ServerError, Unreachable
from batchyard_cli.render import Output

MAX_INLINE_ITEMS = 10_000
DEFAULT_CHUNK = 1_000
CHUNK_KEY_ROOM = 8
"""Characters kept free in a command's key for the `#n` of its chunks' keys."""
PRIORITY_NAMES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class BatchOptions:
    """Batch fields given as flags; None (or empty) leaves the spec's value."""

    name: str | None = None
    job_type: str | None = None
    description: str | None = None
    priority: str | None = None
    tags: Sequence[str] = ()
    max_concurrent_jobs: int | None = None
    execution: str | None = None  # parallel | sequential
    max_attempts: int | None = None
    timeout_s: float | None = None
    stop_on_error: bool | None = None
    failure_threshold: float | None = None
    rollback_on_failure: bool | None = None
    params: Sequence[str] = ()
    items: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    visibility: str | None = None
    shared_with: Sequence[str] = ()
    notify: Sequence[str] = ()  # webhook URLs
    notify_start: bool = False
    notify_progress: int | None = None
    deadline: str | None = None  # ISO 8601 with its offset
    on_deadline_missed: str | None = None


def parse_priority(value: str) -> str | int:
    """`low|medium|high|critical` or a number 1–10."""
    if value in PRIORITY_NAMES:
        return value
    if value.isdigit() and 1 <= int(value) <= 10:
        return int(value)
    raise InputError(f"priority must be one of {', '.join(PRIORITY_NAMES)} or 1-10, not {value!r}")


def parse_param(text: str) -> tuple[str, Any]:
    """`KEY=VALUE`, the value read as JSON when it is JSON (`n=3` is 3, `mode=fast` a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InputError(f"--param takes KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def batch_body(spec: Mapping[str, Any], options: BatchOptions) -> dict[str, Any]:
    """The `POST /v1/batches` body: the spec, overridden field by field by the flags. Inline
    items from flags come after the spec's items. Unknown spec fields are left for the
    server to refuse (it names them)."""
    body = dict(spec)
    config = dict(body.get("config") or {})
    retry = dict(config.get("retry") or {})
    for key, value in (
        ("name", options.name),
        ("job_type", options.job_type),
        ("description", options.description),
    ):
        if value is not None:
            body[key] = value
    if options.priority is not None:
        body["priority"] = parse_priority(options.priority)
    elif isinstance(body.get("priority"), str) and str(body["priority"]).isdigit():
        body["priority"] = int(body["priority"])
    if options.tags:
        body["tags"] = list(options.tags)
    if options.deadline is not None:
        body["deadline"] = options.deadline
    settings: tuple[tuple[str, object], ...] = (
        ("execution", options.execution),
        ("max_concurrent_jobs", options.max_concurrent_jobs),
        ("timeout_s", options.timeout_s),
        ("stop_on_error", options.stop_on_error),
        ("failure_threshold", options.failure_threshold),
        ("rollback_on_failure", options.rollback_on_failure),
        ("on_deadline_missed", options.on_deadline_missed),
    )
    for key, setting in settings:
        if setting is not None:
            config[key] = setting
    if options.max_attempts is not None:
        retry["max_attempts"] = options.max_attempts
    if retry:
        config["retry"] = retry
    if options.params:
        config["params"] = {
            **dict(config.get("params") or {}),
            **dict(map(parse_param, options.params)),
        }
    if options.notify:
        hooks: list[dict[str, Any]] = list(config.get("notifications") or [])
        for url in options.notify:
            hook: dict[str, Any] = {"url": url, "on_start": options.notify_start}
            if options.notify_progress is not None:
                hook["progress_every_percent"] = options.notify_progress
            hooks.append(hook)
        config["notifications"] = hooks
    if config:
        body["config"] = config
    if options.visibility is not None:
        body["visibility"] = options.visibility
    if options.shared_with:
        body["shared_with"] = list(options.shared_with)
    items = list(body.get("items") or []) + [dict(item) for item in options.items]
    if "items" in body or items:
        body["items"] = items
    missing = [key for key in ("name", "job_type") if not body.get(key)]
    if missing:
        flags = " and ".join(f"--{key.replace('_', '-')}" for key in missing)
        raise InputError(f"a batch needs {' and '.join(missing)}: give {flags} or a --spec file")
    return body


def command_key(given: str | None) -> str:
    """The `Idempotency-Key` of a command: the user's, or a fresh one."""
    if given is None:
        return new_idempotency_key()
    if not given.strip() or len(given) > MAX_KEY_LENGTH - CHUNK_KEY_ROOM:
        raise InputError(
            f"--idempotency-key takes 1 to {MAX_KEY_LENGTH - CHUNK_KEY_ROOM} characters"
        )
    return given


def chunk_key(key: str, n: int) -> str:
    """The `Idempotency-Key` of chunk `n` (from 0) of the upload of the command keyed `key`."""
    return f"{key}#{n}"


@contextmanager
def repeat_hint(output: Output, key: str) -> Iterator[None]:
    """When a command's request failed in a way that may have let it through (no answer, or
    the server's error), says how to run it again without making anything twice."""
    try:
        yield
    except (Unreachable, ServerError) as exc:
        if isinstance(exc, Unreachable) and not exc.maybe_received:
            raise
        output.note(
            f"it may have gone through: run the same command with --idempotency-key {key} "
            "to get what it made (or finish it) rather than make it again"
        )
        raise


def upload(
    client: BatchyardClient,
    batch_id: str,
    sources: Iterable[Iterator[dict[str, Any]]],
    *,
    total: int | None,
    key: str,
    chunk_size: int = DEFAULT_CHUNK,
    console: Console | None = None,
) -> int:
    """Sends every item of `sources` to the batch in chunks, chunk n keyed `chunk_key(key,
    n)`; returns how many were added (or had been, by an earlier run with the same key).
    A failing chunk raises `UploadInterrupted` saying how many the batch already holds."""
    added = 0
    bar = Progress(
        TextColumn("uploading"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=console is None or not console.is_terminal,
        transient=False,
    )
    with bar:
        task = bar.add_task("upload", total=total)
        n = 0
        for source in sources:
            for chunk in chunks(source, chunk_size):
                try:
                    client.add_items(batch_id, chunk, chunk_key(key, n))
                except BatchyardError as exc:
                    raise UploadInterrupted(batch_id, added, exc) from exc
                added += len(chunk)
                n += 1
                bar.update(task, completed=added)
    return added


class UploadInterrupted(BatchyardError):
    """A chunk failed: the items before it are in the batch, the rest are not."""

    def __init__(self, batch_id: str, added: int, cause: BatchyardError) -> None:
        super().__init__(cause.message)
        self.batch_id = batch_id
        self.added = added
        self.cause = cause


# files per upload request by default, and the bytes one request may carry (below the API's
# default body cap of 32 MiB)
DEFAULT_FILES_PER_REQUEST = 50
MAX_REQUEST_BYTES = 24 * 1024 * 1024


def file_chunks(
    paths: Sequence[Path], per_request: int, max_bytes: int = MAX_REQUEST_BYTES
) -> Iterator[list[Path]]:
    """The files in upload order, in groups of at most `per_request` files and `max_bytes`
    bytes (a larger file goes alone; the API refuses it if it is over its per-file cap)."""
    group: list[Path] = []
    size = 0
    for path in paths:
        n = path.stat().st_size
        if group and (len(group) >= per_request or size + n > max_bytes):
            yield group
            group, size = [], 0
        group.append(path)
        size += n
    if group:
        yield group


def expand_files(arguments: Sequence[str]) -> list[Path]:
    """The files named, with the regular files under each directory named (recursively, in
    name order, hidden ones skipped). An argument that is neither is an `InputError`."""
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p, path))
        else:
            raise InputError(f"{argument}: no such file or directory")
    if not found:
        raise InputError("no files to upload")
    return found


def _hidden(path: Path, under: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(under).parts)


def upload_files(
    client: BatchyardClient,
    batch_id: str,
    paths: Sequence[Path],
    *,
    key: str,
    per_request: int = DEFAULT_FILES_PER_REQUEST,
    console: Console | None = None,
) -> int:
    """Uploads the files into the batch, `per_request` at a time, with a progress bar (in
    bytes); returns how many were added. A failing request raises `UploadInterrupted`
    saying how many files the batch already holds from this upload."""
    added = 0
    total_bytes = sum(p.stat().st_size for p in paths)
    bar = Progress(
        TextColumn("uploading files"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=console is None or not console.is_terminal,
        transient=False,
    )
    with bar:
        task = bar.add_task("upload", total=total_bytes)
        for n, group in enumerate(file_chunks(paths, per_request)):
            try:
                client.add_files(batch_id, group, chunk_key(key, n))
            except BatchyardError as exc:
                raise UploadInterrupted(batch_id, added, exc) from exc
            added += len(group)
            bar.advance(task, sum(p.stat().st_size for p in group))
    return added
