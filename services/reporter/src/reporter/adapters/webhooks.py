"""Webhook deliveries: their store (`webhook_deliveries`, one document per notice, keyed by
the notice's deterministic id, which batch-api reads to list a batch's deliveries) and the
HTTP sender that refuses non-public targets unless allow-listed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from reporter.domain.backoff import retryable_status
from reporter.domain.notify import Notice
from servicekit import netguard

Document = dict[str, Any]
DELIVERIES = "webhook_deliveries"


class MongoDeliveries:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection = db[DELIVERIES]

    async def add(self, notice: Notice, now: datetime) -> Document | None:
        """Stores a new pending delivery; None if this notice was stored before."""
        doc: Document = {
            "_id": notice.delivery_id,
            "batch_id": notice.batch_id,
            "tenant": notice.tenant,
            "hook": notice.hook,
            "url": notice.url,
            "event": notice.event,
            "payload": notice.payload,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_at": now,
            "last_error": None,
            "last_status_code": None,
            "delivered_at": None,
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc

    async def pending(self) -> list[Document]:
        """Deliveries still to be attempted (after a restart)."""
        return [d async for d in self.collection.find({"status": "pending"})]

    async def update(self, delivery_id: str, fields: Document) -> None:
        await self.collection.update_one({"_id": delivery_id}, {"$set": fields})


@dataclass(frozen=True)
class Outcome:
    """How one attempt went: `status_code` if the receiver answered."""

    ok: bool
    retryable: bool
    status_code: int | None = None
    error: str | None = None


class HttpSender:
    """POSTs a notice. Redirects are not followed (they could lead to a refused target)."""

    def __init__(self, allow: netguard.AllowList, timeout_s: float) -> None:
        self.allow = allow
        self.client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=timeout_s)

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await netguard.resolve(host, port)
        except netguard.ResolveError as exc:
            return Outcome(ok=False, retryable=True, error=str(exc))
        refused = netguard.refused_address(host, addresses, self.allow)
        if refused is not None:
            return Outcome(
                ok=False,
                retryable=False,
                error=f"{host} resolves to {refused}, a non-public address; the operator may "
                "allow-list it with BATCHYARD_WEBHOOK_ALLOW_HOSTS",
            )
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Outcome(ok=False, retryable=True, error="timed out")
        except httpx.HTTPError as exc:
            return Outcome(ok=False, retryable=True, error=f"{type(exc).__name__}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(ok=True, retryable=False, status_code=code)
        return Outcome(
            ok=False,
            retryable=retryable_status(code),
            status_code=code,
            error=f"the receiver answered {code}",
        )

    async def close(self) -> None:
        await self.client.aclose()
