"""Webhooks: the tenant's signing secret (admins) and the deliveries of a batch's notices.

The reporter delivers the notices a batch's `config.notifications` ask for; it records each
delivery in its `webhook_deliveries` read model, which this router reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from batch_api.api.deps import Batches, CurrentPrincipal, Reads
from batch_api.api.problems import Problem
from batch_api.api.routes.keys import admin
from batch_api.domain.principal import Principal
from contracts.vocabulary import WebhookEvent
from servicekit.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, tenant_secret

router = APIRouter(tags=["webhooks"])


class WebhookSecret(BaseModel):
    secret: str = Field(description="Verify notices to this tenant with it; keep it private.")
    signature_header: str = SIGNATURE_HEADER
    delivery_header: str = DELIVERY_HEADER
    event_header: str = EVENT_HEADER
    scheme: str = (
        "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + raw body under the secret>; reject "
        "a t older than 5 minutes"
    )


class WebhookDelivery(BaseModel):
    id: str
    hook: int = Field(description="Index of the webhook in the batch's notifications.")
    url: str
    event: WebhookEvent
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_at: datetime | None = None
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    payload: dict[str, Any]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> WebhookDelivery:
        fields = {k: v for k, v in doc.items() if k in cls.model_fields}
        return cls(id=doc["_id"], **fields)


async def signing_key(request: Request) -> str:
    key: str = request.app.state.webhook_signing_key
    return key


@router.get("/v1/webhooks/secret", response_model=WebhookSecret)
async def webhook_secret(
    who: Annotated[Principal, Depends(admin)], key: Annotated[str, Depends(signing_key)]
) -> WebhookSecret:
    """The secret this tenant's webhook notices are signed with (admins only)."""
    if not key:
        raise Problem(
            503,
            "Webhooks not configured",
            "the operator has not set BATCHYARD_WEBHOOK_SIGNING_KEY",
            kind="webhooks-not-configured",
        )
    return WebhookSecret(secret=tenant_secret(key, who.tenant))


@router.get("/v1/batches/{batch_id}/webhooks", response_model=list[WebhookDelivery])
async def batch_webhook_deliveries(
    batch_id: str, who: CurrentPrincipal, batches: Batches, reads: Reads
) -> list[WebhookDelivery]:
    """Every notice of the batch's webhooks, oldest first: pending (with its next attempt),
    delivered, or failed (with the last error)."""
    await batches.load(batch_id, who)
    docs = await reads.webhook_deliveries(batch_id)
    return [WebhookDelivery.of(d) for d in sorted(docs, key=lambda d: d["created_at"])]
