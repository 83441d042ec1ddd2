"""The API's batch use cases: create (store the items, then publish the batch), read, list.

Creation is durable before it is acknowledged: the registry and item chunks are written to the
store first, then `BatchCreated`, the `BatchItemsAdded` chunks and `BatchSubmitted` are
published with deterministic ids; only when Kafka acknowledged them all is the batch marked
published. A crash in between is repaired by `republish_unfinished` at start."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import re
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka.errors import MessageSizeTooLargeError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from batch_api.adapters.readcache import ReadCache
from batch_api.adapters.registry import BatchRegistry, live_items
from batch_api.adapters.views import ReadModels
from batch_api.api.problems import Problem
from batch_api.domain.dependencies import (
    DependencyProblem,
    Node,
    check_dependencies,
    check_submittable,
    node_of,
)
from batch_api.domain.lifecycle import UNSUBMITTED, status_of
from batch_api.domain.principal import Principal
from batch_api.domain.progress import latest_rollback, progress_of
from batch_api.domain.sharing import may_see_batch, visible_batches_query
from batch_api.limits import (
    CHUNK_MAX_ITEMS,
    MAX_ITEM_BYTES,
    chunk_offsets,
    chunk_sizes,
    json_size,
)
from batch_api.schemas import (
    BatchCreate,
    BatchFilters,
    BatchPage,
    BatchPublic,
    ItemsAdded,
    Progress,
    RollbackPublic,
)
from contracts.codec import envelope_for
from contracts.envelope import deterministic_event_id
from contracts.events import (
    BatchCancelRequested,
    BatchCreated,
    BatchItemsAdded,
    BatchSubmitted,
    Event,
)
from contracts.tolerant import validate_tolerantly
from contracts.topics import Topics
from contracts.vocabulary import BatchConfig
from servicekit.consume import is_transient
from servicekit.publisher import EventPublisher, Outgoing
from servicekit.store import Document

log = logging.getLogger(__name__)

CHUNK_SIZE = CHUNK_MAX_ITEMS  # at most; chunks also stop at CHUNK_MAX_BYTES (batch_api.limits)
_UPLOADED_FILE = re.compile(r"^(b_[0-9a-f]+)\.f[0-9a-f]{16}$")
OWN_PHASES = frozenset({"draft", "uploading", "cancelled"})
PRODUCER = "batch-api"

# Where a batch may come from, as fields of its registry document and of `BatchPublic`.
ORIGINS = ("template_id", "schedule_id", "duplicate_of")


def new_batch_id() -> str:
    """Time-ordered, unique: 12 hex digits of milliseconds and 10 random ones."""
    return f"b_{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


@dataclass
class BatchService:
    registry: BatchRegistry
    read_models: ReadModels
    publisher: EventPublisher
    topics: Topics
    read_cache_s: float = 0.0
    # batch id → seq of the newest snapshot seen live (the live feed's); cached batch reads
    # with an older view are not used
    latest_seq: dict[str, int] = field(default_factory=dict)
    _edit_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    reads: ReadCache[tuple[Document | None, Document | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.reads = ReadCache(
            self.read_cache_s, lambda: self.registry.version, fresh=self._view_is_current
        )

    def _view_is_current(
        self, batch_id: str, read: tuple[Document | None, Document | None]
    ) -> bool:
        newest = self.latest_seq.get(batch_id)
        if newest is None:
            return True
        view = read[1]
        return view is not None and int(view.get("seq", -1)) >= newest

    def edit_lock(self, batch_id: str) -> asyncio.Lock:
        """Serialises the changes of one unsubmitted batch in this process (uploads, item
        removals, submission). FerretDB v1 does not apply concurrent conditional updates of
        one document atomically (measured: concurrent removals guarded by the chunk's `rev`
        both matched), so the guards in the store alone do not order them there; on MongoDB
        they do, across API replicas too."""
        lock = self._edit_locks.get(batch_id)
        if lock is None:
            lock = asyncio.Lock()
            self._edit_locks[batch_id] = lock
        return lock

    async def create(
        self,
        body: BatchCreate,
        who: Principal,
        idempotency_key: str | None,
        origin: Mapping[str, str | None] | None = None,
        request_hash: str | None = None,
        all_items: list[dict[str, Any]] | None = None,
    ) -> tuple[BatchPublic, bool]:
        """Returns the batch and whether it was created now (False: an idempotent repeat).
        `origin`: where it came from (`ORIGINS`: a template, a schedule, a batch copied).
        `request_hash`: what a repeat by `idempotency_key` must match, when the batch is
        made from another request (default: the batch's body). `all_items`: the batch's
        items when the server made more of them than a body carries (a consolidation's
        plan), `body.items` being their first ones (the ones validated); stored and
        published whole, like any batch's, so a create cut short never leaves half of it."""
        if not who.may("operator"):
            raise Problem(403, "Forbidden", "a viewer key cannot create batches")
        await self._validate_items(body)
        await self.check_file_refs(who.tenant, body.items or [])
        await self.validate_dependencies(None, who.tenant, body.config, submitting=not body.draft)
        batch_id = new_batch_id()
        now = datetime.now(UTC)
        if idempotency_key:
            body_hash = request_hash or json_hash(body.model_dump(mode="json"))
            earlier = await self.registry.claim_idempotency_key(
                who.tenant, idempotency_key, body_hash, batch_id, now
            )
            if earlier is not None:
                batch_id = earlier["batch_id"]
                # this repeat carries the batch's items when the key names this very body
                # (not another request's) and that made the batch submitted (not a draft)
                same = body.items or [] if request_hash is None and not body.draft else None
                made = await self._made_by(earlier, body_hash, who, same)
                if made is not None:
                    return made, False
                # The key was claimed but the batch was never stored (the store failed in
                # between): create it now, under the id the key already names.
        items = all_items if all_items is not None else body.items or []
        sizes = chunk_sizes(items)
        starts = chunk_offsets(sizes)
        doc: dict[str, Any] = {
            "_id": batch_id,
            "tenant": who.tenant,
            "owner": who.user,
            "name": body.name,
            "description": body.description,
            "job_type": body.job_type,
            "priority": body.priority,
            "tags": body.tags,
            "deadline": body.deadline or body.config.deadline,
            "config": _config_with_deadline(body).model_dump(mode="json"),
            "total": len(items),
            "chunks": len(starts),
            "chunk_first": {str(c): first for c, first in enumerate(starts)},
            "created_at": now,
            "phase": "draft" if body.draft else "submitted",
            "visibility": body.visibility,
            "shared_with": body.shared_with,
        }
        doc |= {k: v for k, v in (origin or {}).items() if k in ORIGINS and v}
        if idempotency_key:
            doc["idempotency_key"] = f"{who.tenant}:{idempotency_key}"
        if not body.draft:
            doc |= {"submitted_at": now, "submission": "publishing"}
        if not await self.registry.insert(doc):
            return await self.get(batch_id, who), False
        chunks = await self._store_chunks(batch_id, items)
        stored = self.registry.as_stored(doc)
        if not body.draft:
            # What was just stored is in hand: no need to read it back on the request's path.
            await self.publish_or_refuse(batch_id, known=(stored, chunks))
            stored["submission"] = "published"
        # A new batch has no view yet: the reporter projects it once it sees the events.
        return public_batch(stored, None), True

    async def validate_dependencies(
        self, batch_id: str | None, tenant: str, config: BatchConfig, *, submitting: bool
    ) -> None:
        """Raises a 422 problem if `config.depends_on` names an unknown batch, another
        tenant's, the batch itself, or closes a cycle; with `submitting`, a 409 problem if a
        dependency was not submitted yet."""
        deps = list(config.depends_on.batches) if config.depends_on is not None else []
        if not deps:
            return
        try:
            await check_dependencies(batch_id, tenant, deps, self._node)
            if submitting:
                await check_submittable(deps, self._node)
        except DependencyProblem as exc:
            kind = "conflict" if exc.status == 409 else exc.title.lower().replace(" ", "-")
            raise Problem(exc.status, exc.title, exc.detail, kind=kind, **exc.extra) from exc

    async def _node(self, batch_id: str) -> Node | None:
        doc = await self.registry.get(batch_id)
        return None if doc is None else node_of(doc)

    async def _validate_items(self, body: BatchCreate) -> None:
        await self.validate_items(body.job_type, body.items or [])
        await self.check_rollback_on_failure(body.job_type, body.config)

    async def cannot_roll_back(self, job_type_name: str) -> bool:
        """Whether the job type's executors announce it cannot be rolled back (a rollback of
        it would only end `rollback_failed`). A type no executor announces now is left to the
        rollback service to judge."""
        announced = (await self.read_models.job_types()).get(job_type_name)
        return announced is not None and not announced.get("supports_rollback")

    async def check_rollback_on_failure(self, job_type_name: str, config: BatchConfig) -> None:
        """A 422 problem if `config` asks to roll back on failure a job type that cannot be
        rolled back."""
        if config.rollback_on_failure and await self.cannot_roll_back(job_type_name):
            raise Problem(
                422,
                "Invalid configuration",
                f"config.rollback_on_failure: job type {job_type_name} cannot be rolled back "
                "(it defines no backup and compensation)",
            )

    async def validate_items(
        self, job_type_name: str, items: list[dict[str, Any]], first_index: int = 0
    ) -> None:
        """Raises a 422 problem if the job type is unknown or items do not match its schema."""
        job_types = await self.read_models.job_types()
        job_type = job_types.get(job_type_name)
        if job_type is None:
            known = ", ".join(sorted(job_types)) or "none announced yet"
            raise Problem(
                422,
                "Unknown job type",
                f"job type {job_type_name!r} is not served by any executor (known: {known})",
            )
        unfit = [
            {"item": i, "path": "", "msg": problem}
            for i, item in enumerate(items, start=first_index)
            if (problem := _unfit(item)) is not None
        ]
        if unfit:
            raise Problem(
                422,
                "Invalid items",
                f"{len(unfit)} item(s) cannot be sent; item {unfit[0]['item']}: {unfit[0]['msg']}",
                kind="invalid-items",
                errors=unfit[:20],
            )
        try:
            validator = Draft202012Validator(job_type["input_schema"])
        except SchemaError:
            return
        problems = []
        for i, item in enumerate(items, start=first_index):
            error = next(iter(validator.iter_errors(item)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path)
                problems.append({"item": i, "path": where, "msg": error.message})
                if len(problems) >= 20:
                    break
        if problems:
            first = problems[0]
            raise Problem(
                422,
                "Invalid items",
                f"{len(problems)} item(s) do not match the input schema of {job_type_name}; "
                f"item {first['item']}: {first['msg']}",
                errors=problems,
            )

    async def check_file_refs(self, tenant: str, items: list[dict[str, Any]]) -> None:
        """A 422 problem if an item names an uploaded file (`file_id`, `<batch id>.f<hex>`)
        of a batch that is not the tenant's (or no longer exists): a batch reads only its
        tenant's files. One registry read per distinct batch named, so cheap for any count."""
        batches: dict[str, int] = {}
        for i, item in enumerate(items):
            file_id = item.get("file_id")
            found = _UPLOADED_FILE.match(file_id) if isinstance(file_id, str) else None
            if found is not None:  # another job type's own `file_id` is not ours to judge
                batches.setdefault(found.group(1), i)
        for batch_id, first in batches.items():
            doc = await self.registry.get(batch_id)
            if doc is None or doc.get("tenant") != tenant:
                raise Problem(
                    422,
                    "Invalid items",
                    f"item {first}: file {items[first]['file_id']!r} is not a file uploaded "
                    "into one of your batches (upload files with multipart POST .../items)",
                    kind="invalid-items",
                )

    async def add_items(
        self, batch_id: str, items: list[dict[str, Any]], who: Principal, *, validate: bool = True
    ) -> tuple[int, int]:
        """Stores items for a draft or uploading batch (which becomes `uploading`) in chunks
        of up to 1,000; returns (items added, items in the batch now). Nothing is published
        until the batch is submitted. A 409 problem once the batch was submitted."""
        if not who.may("operator"):
            raise Problem(403, "Forbidden", "a viewer key cannot add items", kind="forbidden")
        found = await self.load(batch_id, who)
        if found.status not in UNSUBMITTED:
            raise _conflict(
                f"items can only be added before submission; the batch is {found.status}",
                found.status,
            )
        if not items:
            raise Problem(422, "Invalid items", "the upload holds no items", kind="invalid-items")
        if validate:
            await self.validate_items(found.doc["job_type"], items)
            await self.check_file_refs(who.tenant, items)
        sizes = chunk_sizes(items)
        async with self.edit_lock(batch_id):
            doc = await self.registry.allocate_chunks(batch_id, sorted(UNSUBMITTED), sizes)
        if doc is None:
            now = await self.load(batch_id, who)
            raise _conflict(
                f"items can only be added before submission; the batch is {now.status}", now.status
            )
        chunk = int(doc["chunks"]) - len(sizes)
        first = int(doc["total"]) - len(items)
        offsets = chunk_offsets(sizes)
        starts = {chunk + n: first + offset for n, offset in enumerate(offsets)}
        await self.registry.record_chunk_starts(batch_id, starts)
        for (c, start), offset, size in zip(starts.items(), offsets, sizes, strict=True):
            await self.registry.put_chunk(batch_id, c, start, items[offset : offset + size])
        return len(items), int(doc["total"])

    async def upload(
        self, batch_id: str, items: list[dict[str, Any]], who: Principal, key: str | None
    ) -> ItemsAdded:
        """`add_items` honouring an Idempotency-Key: a repeated upload with the same key and
        body returns the first one's result and stores nothing again."""

        async def add() -> ItemsAdded:
            added, total = await self.add_items(batch_id, items, who)
            return ItemsAdded(batch_id=batch_id, added=added, total=total)

        if not key:
            return await add()
        await self.load(batch_id, who)
        body_hash = json_hash(items)
        return await self.once(
            who, f"items:{batch_id}:{key}", body_hash, batch_id, add, "a different request body"
        )

    async def repeat_of(
        self, who: Principal, idempotency_key: str, request_hash: str
    ) -> BatchPublic | None:
        """The batch an earlier request with this `Idempotency-Key` made, if any: for a
        request that makes its batch only after costly work, to answer a repeat first (the
        same problems as `create`: 409 for another request, 410 once the batch was deleted)."""
        earlier = await self.registry.idempotency_record(who.tenant, idempotency_key)
        return None if earlier is None else await self._made_by(earlier, request_hash, who)

    async def _store_chunks(self, batch_id: str, items: list[dict[str, Any]]) -> list[Document]:
        """Stores the items of a batch made whole (by `create`) in their chunks; storing
        them again stores nothing new. Returns the chunks as stored."""
        sizes = chunk_sizes(items)
        chunks = []
        for chunk, (start, size) in enumerate(zip(chunk_offsets(sizes), sizes, strict=True)):
            part = items[start : start + size]
            await self.registry.put_chunk(batch_id, chunk, start, part)
            chunks.append({"chunk": chunk, "first_index": start, "items": part})
        return chunks

    async def _made_by(
        self,
        earlier: Document,
        request_hash: str,
        who: Principal,
        items: list[dict[str, Any]] | None = None,
    ) -> BatchPublic | None:
        """The batch the request recorded in `earlier` made; None if the key was claimed but
        its batch never stored. A 409 problem if `request_hash` is not that request's, a 410
        if its batch was deleted since.

        A submitted batch not yet marked published is published here: its first request
        was cut short, or is still storing and publishing it (publishing twice is harmless;
        the scheduler takes each chunk once). Never before all its chunks are stored: this
        repeat stores them from `items` when it carries the same items, else it leaves the
        batch to its first request (or to `republish_unfinished`)."""
        if earlier["body_hash"] != request_hash:
            raise Problem(
                409,
                "Idempotency key reused",
                "this Idempotency-Key was used with a different request body",
            )
        batch_id = earlier["batch_id"]
        if earlier.get("deleted_at") is not None:
            raise Problem(
                410,
                "Gone",
                f"the batch this Idempotency-Key created, {batch_id}, was deleted; "
                "send a new key to create another",
                kind="batch-deleted",
                batch_id=batch_id,
            )
        stored = await self.registry.get(batch_id)
        if stored is None:
            return None
        if stored.get("submission") == "publishing":
            if items is not None:
                chunks = await self._store_chunks(batch_id, items)
                await self.publish_or_refuse(batch_id, known=(stored, chunks))
            elif not await self.registry.missing_chunks(batch_id, int(stored.get("chunks") or 0)):
                await self.publish_or_refuse(batch_id)
        return await self.get(batch_id, who)

    async def once(
        self,
        who: Principal,
        scope: str,
        body_hash: str,
        batch_id: str,
        upload: Callable[[], Awaitable[ItemsAdded]],
        what_differs: str,
    ) -> ItemsAdded:
        """Runs `upload` once per Idempotency-Key `scope`: a repeat with the same `body_hash`
        gets the first result, another body a 409, a repeat while the first runs a 409. A
        failed upload frees the key."""
        earlier = await self.registry.claim_idempotency_key(
            who.tenant, scope, body_hash, batch_id, datetime.now(UTC)
        )
        if earlier is not None:
            if earlier["body_hash"] != body_hash:
                raise Problem(
                    409,
                    "Idempotency key reused",
                    f"this Idempotency-Key was used with {what_differs}",
                )
            if earlier.get("result") is None:
                raise Problem(
                    409,
                    "Conflict",
                    "an upload with this Idempotency-Key is still in progress",
                    kind="request-in-progress",
                    headers={"Retry-After": "1"},
                )
            return ItemsAdded.model_validate(earlier["result"])
        try:
            result = await upload()
        except BaseException:
            await self.registry.release_idempotency_key(who.tenant, scope)
            raise
        await self.registry.record_idempotent_result(who.tenant, scope, result.model_dump())
        return result

    async def submit(self, batch_id: str, who: Principal) -> BatchPublic:
        """Submits a draft or uploading batch: it becomes `queued` and is published with all
        its items. 409 once submitted; 422 if it holds no items."""
        if not who.may("operator"):
            raise Problem(403, "Forbidden", "a viewer key cannot submit", kind="forbidden")
        found = await self.load(batch_id, who)
        if found.status not in UNSUBMITTED:
            raise _conflict(
                f"only a draft can be submitted; the batch is {found.status}", found.status
            )
        total, chunks = int(found.doc.get("total") or 0), int(found.doc.get("chunks") or 0)
        if total == 0:
            raise Problem(422, "No items", "add items before submitting the batch", kind="no-items")
        config = validate_tolerantly(BatchConfig, found.doc.get("config") or {})
        await self.validate_dependencies(batch_id, who.tenant, config, submitting=True)
        if await self.registry.missing_chunks(batch_id, chunks):
            raise _conflict(
                "an upload to this batch is still being stored; try again", found.status
            )
        async with self.edit_lock(batch_id):
            now = datetime.now(UTC)
            if not await self.registry.set_if(
                batch_id,
                {"phase": found.status, "chunks": chunks},
                {"phase": "submitted", "submission": "publishing", "submitted_at": now},
            ):
                raise _conflict("the batch changed while it was submitted; try again", found.status)
            await self.publish_or_refuse(batch_id)
        return await self.get(batch_id, who)

    async def publish_submission(
        self, batch_id: str, known: tuple[Document, list[Document]] | None = None
    ) -> None:
        """Publishes a stored batch and its chunks; safe to repeat. `known`: the batch's
        document and chunks as just stored, when the caller has them (else they are read)."""
        doc = known[0] if known is not None else await self.registry.get(batch_id)
        if doc is None:
            return
        if doc.get("edited") and not doc.get("compacted"):
            doc = await self._compact(doc)
        created = BatchCreated(
            batch_id=batch_id,
            name=doc["name"],
            description=doc["description"],
            job_type=doc["job_type"],
            priority=doc["priority"],
            tags=doc["tags"],
            owner=doc["owner"],
            config=validate_tolerantly(BatchConfig, doc["config"]),
            created_at=doc["created_at"],
        )
        messages = [self._out(doc, created, "created")]
        chunks = 0
        stored_chunks = (
            _each(known[1])
            if known is not None
            else self.registry.chunks(batch_id, doc.get("chunks"))
        )
        async for chunk in stored_chunks:
            if not chunk["items"]:
                continue  # every item of it was removed from the draft
            added = BatchItemsAdded(
                batch_id=batch_id,
                chunk=chunk["chunk"],
                first_index=chunk["first_index"],
                items=chunk["items"],
            )
            messages.append(self._out(doc, added, f"items:{chunk['chunk']}"))
            chunks += 1
            if len(messages) >= 50:
                await self.publisher.publish(messages)
                messages = []
        submitted = BatchSubmitted(batch_id=batch_id, total_items=doc["total"], chunks=chunks)
        messages.append(self._out(doc, submitted, "submitted"))
        await self.publisher.publish(messages)
        await self.registry.set(batch_id, {"submission": "published"})

    async def _compact(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Seals every chunk of a submitted, edited batch and drops its removed items, so the
        jobs are the remaining items, dense and in upload order. Safe to repeat: a repeat
        finds nothing removed and the same layout."""
        batch_id = doc["_id"]
        first = 0
        layout: dict[str, int] = {}
        for number in range(int(doc.get("chunks") or 0)):
            chunk = await self.registry.seal_chunk(batch_id, number)
            if chunk is None:
                continue
            items = [item for _, item in live_items(chunk)]
            if chunk.get("removed") or chunk.get("first_index") != first:
                await self.registry.rewrite_chunk(batch_id, number, items, first)
            if items:
                layout[str(number)] = first
            first += len(items)
        fields = {"total": first, "chunk_first": layout, "compacted": True}
        await self.registry.set(batch_id, fields)
        return {**doc, **fields}

    def _out(self, doc: dict[str, Any], event: Event, what: str) -> Outgoing:
        env = envelope_for(
            event,
            producer=PRODUCER,
            tenant=doc["tenant"],
            batch_id=doc["_id"],
            event_id=deterministic_event_id(doc["_id"], what),
        )
        return Outgoing(self.topics.batch_commands, doc["_id"], env)

    async def publish_or_refuse(
        self, batch_id: str, known: tuple[Document, list[Document]] | None = None
    ) -> None:
        """`publish_submission`; but a batch Kafka refuses for good (a message larger than it
        takes: a batch stored before the API held items and chunks to `batch_api.limits`, or
        a broker set below Kafka's default) is cancelled with the reason, whatever of it
        reached the scheduler too, and a 422 problem raised. Tried again, it would fail the
        same way at every start of the API, and keep the API from starting."""
        try:
            await self.publish_submission(batch_id, known)
        except MessageSizeTooLargeError as exc:
            reason = f"Kafka refused one of its messages as too large ({exc})"
            doc = known[0] if known is not None else await self.registry.get(batch_id)
            await self._refuse(batch_id, doc, reason)
            raise Problem(
                422,
                "Batch too large for Kafka",
                f"the batch was stored but could not be sent, and is cancelled: {reason}",
                kind="too-large-for-kafka",
                batch_id=batch_id,
            ) from exc

    async def _refuse(self, batch_id: str, doc: Document | None, reason: str) -> None:
        """Cancels a submitted batch that cannot be sent, with the reason, and tells the
        scheduler in case some of it reached it."""
        await self.registry.set(
            batch_id,
            {
                "phase": "cancelled",
                "submission": "refused",
                "reason": reason,
                "finished_at": datetime.now(UTC),
            },
        )
        if doc is not None:
            cancel = BatchCancelRequested(batch_id=batch_id, requested_by=PRODUCER)
            await self.publisher.publish([self._out(doc, cancel, "refused")])
        log.error("batch refused", extra={"batch_id": batch_id, "reason": reason})

    async def republish_unfinished(self) -> int:
        """Finishes submissions a crash interrupted (older than a few seconds). One that
        cannot be finished is cancelled or, for an error not of the broker or the store,
        logged and left: neither keeps the API from starting. A batch the crash left with
        chunks unstored (its create stopped between storing the batch and its last chunk)
        is cancelled: its items are gone, and half of it must not run."""
        ids = await self.registry.unfinished_submissions(datetime.now(UTC) - timedelta(seconds=5))
        for batch_id in ids:
            doc = await self.registry.get(batch_id)
            if doc is not None and await self.registry.missing_chunks(
                batch_id, int(doc.get("chunks") or 0)
            ):
                reason = (
                    "the API stopped before every item of it was stored, so none was sent: "
                    "create it again (with a new Idempotency-Key)"
                )
                await self._refuse(batch_id, doc, reason)
                continue
            log.warning("republishing an unfinished submission", extra={"batch_id": batch_id})
            try:
                await self.publish_or_refuse(batch_id)
            except Problem:
                continue  # cancelled, and logged
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("an unfinished submission failed", extra={"batch_id": batch_id})
        return len(ids)

    async def load(self, batch_id: str, who: Principal) -> Loaded:
        """The batch's registry document, view and status; a 404 problem if the caller's
        tenant has no such batch (another tenant's batch is not found, not forbidden)."""
        doc = await self.registry.get(batch_id)
        if doc is None or not may_see_batch(doc, who):
            raise Problem(404, "Not found", f"no batch {batch_id}")
        view = None
        if doc.get("phase", "submitted") == "submitted":
            view = await self.read_models.batch_view(batch_id)
        return Loaded(doc, view, status_of(doc, view))

    async def get(self, batch_id: str, who: Principal) -> BatchPublic:
        """One batch as its readers poll it: from the read cache (see adapters/readcache.py)."""
        doc, view = await self.reads.get(batch_id, lambda: self._read(batch_id))
        if doc is None or not may_see_batch(doc, who):
            raise Problem(404, "Not found", f"no batch {batch_id}")
        return public_batch(doc, view)

    async def _read(self, batch_id: str) -> tuple[Document | None, Document | None]:
        doc = await self.registry.get(batch_id)
        if doc is None or doc.get("phase", "submitted") != "submitted":
            return doc, None
        return doc, await self.read_models.batch_view(batch_id)

    async def list(
        self, who: Principal, filters: BatchFilters, limit: int, cursor: str | None
    ) -> BatchPage:
        """The caller's tenant's batches matching `filters`, newest first; `next_cursor`
        continues after the last one returned (None on the last page)."""
        before = _decode_cursor(cursor) if cursor else None
        query = self._list_query(who.tenant, filters)
        # A status filter is one or more ways to match (the API's own phases, archived, the
        # views' statuses), each asked of the store on its own and the answers merged:
        # the local store narrows a query by its top-level conditions only, not inside an
        # `$or` (docs/architecture.md, "The store"), so the visibility rule goes beside them.
        ways, viewed = _status_ways(set(filters.status)) if filters.status else ([{}], [])
        query |= visible_batches_query(who) or {}
        found: dict[str, Document] = {}
        for way in ways:
            for doc in await self.registry.find(query | way, limit + 1, before):
                found[doc["_id"]] = doc
        if viewed:
            for doc in await self._with_view_status(who.tenant, viewed, query, limit + 1, before):
                found[doc["_id"]] = doc
        docs = [found[i] for i in sorted(found, reverse=True)][: limit + 1]
        page = docs[:limit]
        views = await self.read_models.batch_views_by_id([d["_id"] for d in page])
        items = [public_batch(d, views.get(d["_id"])) for d in page]
        next_cursor = _encode_cursor(page[-1]["_id"]) if len(docs) > limit else None
        return BatchPage(items=items, next_cursor=next_cursor)

    def _list_query(self, tenant: str, f: BatchFilters) -> dict[str, Any]:
        """The store filter of every condition but the status (see `_status_ways`)."""
        query: dict[str, Any] = {"tenant": tenant}
        if f.priority is not None:
            query["priority"] = f.priority
        if f.job_type:
            query["job_type"] = f.job_type
        if f.tag:
            query["tags"] = f.tag
        if f.owner:
            query["owner"] = f.owner
        for origin in ("template_id", "schedule_id"):
            if getattr(f, origin):
                query[origin] = getattr(f, origin)
        created: dict[str, Any] = {}
        if f.created_after:
            created["$gte"] = f.created_after
        if f.created_before:
            created["$lt"] = f.created_before
        if created:
            query["created_at"] = created
        if f.q:
            query["name"] = {"$regex": re.escape(f.q), "$options": "i"}
        return query

    async def _with_view_status(
        self,
        tenant: str,
        statuses: Sequence[str],
        query: dict[str, Any],
        limit: int,
        before: str | None,
    ) -> Sequence[Document]:
        """Submitted batches matching `query` whose view is in one of `statuses`, newest
        first, at most `limit`: the views are read newest first, 200 ids at a time, and each
        200's registry documents asked for by `_id`, until `limit` are found. A common
        status fills a page from the newest views; a rare one is narrowed in the store."""
        found: list[Document] = []
        submitted = {"phase": {"$nin": sorted(OWN_PHASES)}, "archived_at": None}
        chunks = self.read_models.batch_ids_with_status(tenant, statuses, before, 200)
        async with aclosing(chunks):  # stopping early ends the store's reading at once
            async for chunk in chunks:
                asked = query | submitted | {"_id": {"$in": chunk}}
                found += await self.registry.find(asked, limit - len(found), None)
                if len(found) >= limit:
                    break
        return found


def _status_ways(statuses: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """How a registry document matches `statuses` (any of them): the registry's own ways (an
    archive; the API's own phases), and the statuses that only the batch views know (see
    `BatchService._with_view_status`). `cancelled` is both: a draft cancelled by the API, or
    a submitted batch whose view says so."""
    ways: list[dict[str, Any]] = []
    if "archived" in statuses:
        ways.append({"archived_at": {"$ne": None}})
    own = sorted(statuses & OWN_PHASES)
    if own:
        ways.append({"phase": {"$in": own}, "archived_at": None})
    viewed = sorted(statuses - (OWN_PHASES - {"cancelled"}) - {"archived"})
    return ways, viewed


def _unfit(item: dict[str, Any]) -> str | None:
    """Why an item cannot travel as it is (too large, or not JSON); None if it can."""
    try:
        size = json_size(item)
    except ValueError as exc:
        return f"the item {exc}"
    if size > MAX_ITEM_BYTES:
        return (
            f"the item is {size:,} bytes as JSON, more than the {MAX_ITEM_BYTES:,} allowed; "
            "pass large data as an uploaded file"
        )
    return None


def _config_with_deadline(body: BatchCreate) -> BatchConfig:
    """The top-level `deadline` is the scheduler's `config.deadline` when that is unset."""
    if body.deadline is not None and body.config.deadline is None:
        return body.config.model_copy(update={"deadline": body.deadline})
    return body.config


def _conflict(detail: str, status: str) -> Problem:
    return Problem(409, "Conflict", detail, kind="conflict", batch_status=status)


@dataclass(frozen=True)
class Loaded:
    doc: dict[str, Any]
    view: dict[str, Any] | None
    status: str


def require_jobs(found: Loaded) -> None:
    """A 410 problem if retention removed the batch's per-job records (its jobs, items, CSV
    and export); its report and analytics are kept."""
    dropped = found.doc.get("jobs_dropped_at")
    if dropped is not None:
        raise Problem(
            410,
            "Gone",
            f"batch {found.doc['_id']} was archived by retention: its per-job records were "
            "removed; its report and analytics are kept",
            kind="archived-jobs-removed",
        )


async def _each(docs: list[Document]) -> AsyncIterator[Document]:
    for doc in docs:
        yield doc


def json_hash(value: Any) -> str:
    """A request's identity for its `Idempotency-Key`: the SHA-256 of its JSON."""
    return hashlib.sha256(orjson.dumps(value)).hexdigest()


def public_batch(doc: dict[str, Any], view: dict[str, Any] | None) -> BatchPublic:
    """The HTTP shape of a batch: the registry's fields, the view's status and progress."""
    status = status_of(doc, view)
    view = view or {}
    counts = view.get("counts") or {"total": doc.get("total", 0), "pending": doc.get("total", 0)}
    if not counts.get("total"):
        counts = {**counts, "total": doc.get("total", 0), "pending": doc.get("total", 0)}
    waiting_for = [str(b) for b in view.get("waiting_for") or []] if status == "queued" else []
    now = datetime.now(UTC)
    progress = progress_of(counts, view, now, status)
    rollback = latest_rollback(view.get("rollbacks"), now)
    return BatchPublic(
        id=doc["_id"],
        name=doc["name"],
        description=doc.get("description", ""),
        job_type=doc["job_type"],
        priority=doc.get("priority", "medium"),
        tags=doc.get("tags", []),
        owner=doc.get("owner", ""),
        status=status,
        created_at=doc["created_at"],
        deadline=doc.get("deadline"),
        started_at=view.get("started_at"),
        finished_at=view.get("finished_at"),
        config=doc.get("config", {}),
        progress=Progress.model_validate(progress),
        reason=view.get("reason") or doc.get("reason") or _waiting_reason(status, doc, waiting_for),
        waiting_for=waiting_for,
        deadline_at_risk=bool(view.get("deadline_at_risk")),
        visibility=doc.get("visibility", "tenant"),
        shared_with=doc.get("shared_with") or [],
        **{k: doc.get(k) for k in ORIGINS},
        seq=int(view.get("seq") or 0),
        rollback=RollbackPublic.model_validate(rollback) if rollback else None,
    )


def _waiting_reason(status: str, doc: dict[str, Any], waiting_for: list[str]) -> str | None:
    """Why a queued batch does not start: the dependencies it still waits for."""
    if status != "queued" or not waiting_for:
        return None
    on = ((doc.get("config") or {}).get("depends_on") or {}).get("on", "completed")
    verb = "complete" if on == "completed" else "finish"
    return f"waiting for {', '.join(waiting_for)} to {verb}"


def _encode_cursor(batch_id: str) -> str:
    """Batch ids are time-ordered, so the last id returned is the position."""
    raw = orjson.dumps({"before": batch_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return str(orjson.loads(base64.urlsafe_b64decode(padded))["before"])
    except Exception as exc:
        raise Problem(400, "Invalid cursor", "the cursor is not one this API returned") from exc
