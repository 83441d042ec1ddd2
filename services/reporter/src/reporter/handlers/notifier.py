"""Webhook notices: snapshots the projector applied become stored deliveries, and a
background loop delivers them, signed, retrying with backoff.

At least once: a delivery is stored before its first attempt and marked after each, so a
restarted reporter carries on with what is pending; a receiver drops repeats by the
`X-Batchyard-Delivery` id. A notice is stored once whatever the number of replays of its
snapshot (its id is deterministic)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from contracts.envelope import Envelope
from contracts.events import BatchDeadlineAtRisk, BatchDeadlineMissed, BatchSnapshot, Event
from contracts.vocabulary import Webhook
from reporter.adapters.metrics import WEBHOOK_ATTEMPTS, WEBHOOKS_DONE
from reporter.adapters.webhooks import MongoDeliveries, Outcome
from reporter.domain.backoff import DeliveryPolicy
from reporter.domain.notify import notices
from servicekit.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature,
    tenant_secret,
)

log = logging.getLogger(__name__)

Document = dict[str, Any]
# a batch's webhooks and name; None while the batch's creation is not projected yet
HookLookup = Callable[[str], Awaitable[tuple[list[Webhook], str] | None]]


class Sender(Protocol):
    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome: ...


@dataclass
class Notifier:
    deliveries: MongoDeliveries
    sender: Sender
    hooks_of: HookLookup
    signing_key: str
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    concurrency: int = 8
    _due: list[tuple[datetime, str]] = field(default_factory=list)
    _docs: dict[str, Document] = field(default_factory=dict)
    _hooks: OrderedDict[str, tuple[list[Webhook], str]] = field(default_factory=OrderedDict)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def observe(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        """Stores the notices the applied snapshots and deadline events call for and wakes
        the delivery loop."""
        now = datetime.now(UTC)
        for env, event in items:
            if not isinstance(event, BatchSnapshot | BatchDeadlineAtRisk | BatchDeadlineMissed):
                continue
            webhooks, name = await self._webhooks(event.batch_id)
            if not webhooks:
                continue
            for notice in notices(
                event,
                seq=env.seq,
                tenant=env.tenant,
                occurred_at=env.occurred_at,
                webhooks=webhooks,
                batch_name=name,
            ):
                if notice.delivery_id in self._seen:
                    continue
                self._remember(notice.delivery_id)
                doc = await self.deliveries.add(notice, now)
                if doc is not None:
                    self._schedule(doc)

    async def recover(self) -> None:
        for doc in await self.deliveries.pending():
            self._schedule(doc)
        if self._docs:
            log.info("resuming %d pending webhook deliveries", len(self._docs))

    async def run(self) -> None:
        """Delivers what is due, at most `concurrency` at once, until cancelled."""
        running: set[asyncio.Task[None]] = set()
        while True:
            now = datetime.now(UTC)
            while self._due and self._due[0][0] <= now and len(running) < self.concurrency:
                _, delivery_id = heapq.heappop(self._due)
                doc = self._docs.get(delivery_id)
                if doc is None:
                    continue
                task = asyncio.create_task(self._deliver(doc))
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _t: self._wake.set())
            wait_s = 1.0
            if self._due and len(running) < self.concurrency:
                wait_s = max(0.0, min(wait_s, (self._due[0][0] - now).total_seconds()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)

    async def _deliver(self, doc: Document) -> None:
        delivery_id = doc["_id"]
        body = orjson.dumps(doc["payload"])
        outcome = await self._attempt(doc, body)
        attempts = int(doc.get("attempts", 0)) + 1
        now = datetime.now(UTC)
        fields: Document = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        WEBHOOK_ATTEMPTS.labels("ok" if outcome.ok else "error").inc()
        if outcome.ok:
            fields |= {"status": "delivered", "delivered_at": now}
        elif outcome.retryable and attempts < self.policy.max_attempts:
            fields["next_at"] = now + timedelta(seconds=self.policy.delay_after(attempts))
        else:
            fields["status"] = "failed"
            log.warning(
                "webhook delivery %s failed after %d attempt(s): %s",
                delivery_id,
                attempts,
                outcome.error,
            )
        try:
            await self.deliveries.update(delivery_id, fields)
        except Exception:
            # the store is away: try the same attempt count again shortly
            log.exception("could not record webhook delivery %s", delivery_id)
            doc["next_at"] = now + timedelta(seconds=self.policy.initial_s)
            self._schedule(doc)
            return
        doc.update(fields)
        if doc.get("status") == "pending":
            self._schedule(doc)
        else:
            WEBHOOKS_DONE.labels(doc["status"]).inc()
            self._docs.pop(delivery_id, None)

    async def _attempt(self, doc: Document, body: bytes) -> Outcome:
        try:
            secret = tenant_secret(self.signing_key, doc["tenant"])
        except ValueError as exc:
            return Outcome(ok=False, retryable=False, error=str(exc))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Batchyard-Webhooks/1",
            SIGNATURE_HEADER: signature(secret, body),
            DELIVERY_HEADER: doc["_id"],
            EVENT_HEADER: doc["event"],
        }
        try:
            return await self.sender.send(doc["url"], body, headers)
        except Exception as exc:  # a bug in sending must not stop the loop
            log.exception("webhook delivery %s crashed", doc["_id"])
            return Outcome(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}")

    def _schedule(self, doc: Document) -> None:
        self._docs[doc["_id"]] = doc
        due = doc.get("next_at") or datetime.now(UTC)
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        heapq.heappush(self._due, (due, doc["_id"]))
        self._wake.set()

    async def _webhooks(self, batch_id: str) -> tuple[list[Webhook], str]:
        """A batch's webhooks (fixed at creation, so cached once known)."""
        found = self._hooks.get(batch_id)
        if found is None:
            found = await self.hooks_of(batch_id)
            if found is None:
                return [], ""
            self._hooks[batch_id] = found
            while len(self._hooks) > 10_000:
                self._hooks.popitem(last=False)
        return found

    def _remember(self, delivery_id: str) -> None:
        self._seen[delivery_id] = None
        while len(self._seen) > 50_000:
            self._seen.popitem(last=False)
