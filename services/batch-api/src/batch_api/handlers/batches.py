"""The API's batch use cases: create (store the items, then publish the batch), read, list.

Creation is durable before it is acknowledged: the registry and item chunks are written to the
store first, then `BatchCreated`, the `BatchItemsAdded` chunks and `BatchSubmitted` are
published with deterministic ids; only when Kafka acknowledged them all is the batch marked
published. A crash in between is repaired by `republish_unfinished` at start."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from batch_api.adapters.registry import BatchRegistry
from batch_api.adapters.views import ReadModels
from batch_api.api.problems import Problem
from batch_api.domain.principal import Principal
from batch_api.domain.progress import progress_of
from batch_api.schemas import BatchCreate, BatchPage, BatchPublic, Progress
from contracts.codec import envelope_for
from contracts.envelope import deterministic_event_id
from contracts.events import BatchCreated, BatchItemsAdded, BatchSubmitted, Event
from contracts.topics import Topics
from contracts.vocabulary import BatchConfig
from servicekit.publisher import EventPublisher, Outgoing

log = logging.getLogger(__name__)

CHUNK_SIZE = 1000
PRODUCER = "batch-api"


def new_batch_id() -> str:
    """Time-ordered, unique: 12 hex digits of milliseconds and 10 random ones."""
    return f"b_{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


@dataclass
class BatchService:
    registry: BatchRegistry
    read_models: ReadModels
    publisher: EventPublisher
    topics: Topics

    async def create(
        self, body: BatchCreate, who: Principal, idempotency_key: str | None
    ) -> tuple[BatchPublic, bool]:
        """Returns the batch and whether it was created now (False: an idempotent repeat)."""
        if not who.may("operator"):
            raise Problem(403, "Forbidden", "a viewer key cannot create batches")
        await self._validate_items(body)
        batch_id = new_batch_id()
        now = datetime.now(UTC)
        if idempotency_key:
            body_hash = hashlib.sha256(orjson.dumps(body.model_dump(mode="json"))).hexdigest()
            earlier = await self.registry.claim_idempotency_key(
                who.tenant, idempotency_key, body_hash, batch_id, now
            )
            if earlier is not None:
                if earlier["body_hash"] != body_hash:
                    raise Problem(
                        409,
                        "Idempotency key reused",
                        "this Idempotency-Key was used with a different request body",
                    )
                batch_id = earlier["batch_id"]
                stored = await self.registry.get(batch_id)
                if stored is not None:
                    if stored.get("submission") != "published":
                        await self.publish_submission(batch_id)
                    return await self.get(batch_id, who), False
                # The key was claimed but the batch was never stored (the store failed in
                # between): create it now, under the id the key already names.
        inserted = await self.registry.insert(
            {
                "_id": batch_id,
                "tenant": who.tenant,
                "owner": who.user,
                "name": body.name,
                "description": body.description,
                "job_type": body.job_type,
                "priority": body.priority,
                "tags": body.tags,
                "config": body.config.model_dump(mode="json"),
                "total": len(body.items),
                "created_at": now,
                "submitted_at": now,
                "submission": "publishing",
            }
        )
        if not inserted:
            return await self.get(batch_id, who), False
        for chunk, start in enumerate(range(0, len(body.items), CHUNK_SIZE)):
            await self.registry.put_chunk(
                batch_id, chunk, start, body.items[start : start + CHUNK_SIZE]
            )
        await self.publish_submission(batch_id)
        return await self.get(batch_id, who), True

    async def _validate_items(self, body: BatchCreate) -> None:
        job_types = await self.read_models.job_types()
        job_type = job_types.get(body.job_type)
        if job_type is None:
            known = ", ".join(sorted(job_types)) or "none announced yet"
            raise Problem(
                422,
                "Unknown job type",
                f"job type {body.job_type!r} is not served by any executor (known: {known})",
            )
        try:
            validator = Draft202012Validator(job_type["input_schema"])
        except SchemaError:
            return
        problems = []
        for i, item in enumerate(body.items):
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
                f"{len(problems)} item(s) do not match the input schema of {body.job_type}; "
                f"item {first['item']}: {first['msg']}",
                errors=problems,
            )

    async def publish_submission(self, batch_id: str) -> None:
        """Publishes a stored batch and its chunks; safe to repeat."""
        doc = await self.registry.get(batch_id)
        if doc is None:
            return
        created = BatchCreated(
            batch_id=batch_id,
            name=doc["name"],
            description=doc["description"],
            job_type=doc["job_type"],
            priority=doc["priority"],
            tags=doc["tags"],
            owner=doc["owner"],
            config=BatchConfig.model_validate(doc["config"]),
            created_at=doc["created_at"],
        )
        messages = [self._out(doc, created, "created")]
        chunks = 0
        async for chunk in self.registry.chunks(batch_id):
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

    def _out(self, doc: dict[str, Any], event: Event, what: str) -> Outgoing:
        env = envelope_for(
            event,
            producer=PRODUCER,
            tenant=doc["tenant"],
            batch_id=doc["_id"],
            event_id=deterministic_event_id(doc["_id"], what),
        )
        return Outgoing(self.topics.batch_commands, doc["_id"], env)

    async def republish_unfinished(self) -> int:
        """Finishes submissions a crash interrupted (older than a few seconds)."""
        ids = await self.registry.unfinished_submissions(datetime.now(UTC) - timedelta(seconds=5))
        for batch_id in ids:
            log.warning("republishing an unfinished submission", extra={"batch_id": batch_id})
            await self.publish_submission(batch_id)
        return len(ids)

    async def get(self, batch_id: str, who: Principal) -> BatchPublic:
        doc = await self.registry.get(batch_id)
        if doc is None or doc["tenant"] != who.tenant:
            raise Problem(404, "Not found", f"no batch {batch_id}")
        view = await self.read_models.batch_view(batch_id)
        return _public(doc, view)

    async def list(
        self, who: Principal, limit: int, cursor: str | None, status: str | None
    ) -> BatchPage:
        before = _decode_cursor(cursor) if cursor else None
        views = await self.read_models.batch_views(who.tenant, limit + 1, before, status)
        items = [_public(_registry_from_view(v), v) for v in views[:limit]]
        next_cursor = None
        if len(views) > limit:
            last = views[limit - 1]
            next_cursor = _encode_cursor(last["created_at"], last["_id"])
        return BatchPage(items=items, next_cursor=next_cursor)


def _public(doc: dict[str, Any], view: dict[str, Any] | None) -> BatchPublic:
    view = view or {}
    counts = view.get("counts") or {"total": doc.get("total", 0), "pending": doc.get("total", 0)}
    if not counts.get("total"):
        counts = {**counts, "total": doc.get("total", 0), "pending": doc.get("total", 0)}
    started_at, finished_at = view.get("started_at"), view.get("finished_at")
    progress = progress_of(counts, started_at, finished_at, datetime.now(UTC))
    return BatchPublic(
        id=doc["_id"],
        name=doc["name"],
        description=doc.get("description", ""),
        job_type=doc["job_type"],
        priority=doc.get("priority", "medium"),
        tags=doc.get("tags", []),
        owner=doc.get("owner", ""),
        status=view.get("status", "queued"),
        created_at=doc["created_at"],
        started_at=started_at,
        finished_at=finished_at,
        config=doc.get("config", {}),
        progress=Progress.model_validate(progress),
        reason=view.get("reason"),
    )


def _registry_from_view(view: dict[str, Any]) -> dict[str, Any]:
    return {**view, "total": (view.get("counts") or {}).get("total", 0)}


def _encode_cursor(created_at: datetime, batch_id: str) -> str:
    raw = orjson.dumps([created_at.isoformat(), batch_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, batch_id = orjson.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created_at), str(batch_id)
    except Exception as exc:
        raise Problem(400, "Invalid cursor", "the cursor is not one this API returned") from exc
