"""Signing webhook notices, shared by the reporter (which signs) and batch-api (which tells a
tenant's admin the secret to verify with).

Each tenant has its own secret, derived from the deployment's signing key
(`BATCHYARD_WEBHOOK_SIGNING_KEY`, shared by batch-api and the reporter) so that no secret
travels in events. A notice carries `X-Batchyard-Signature: t=<unix seconds>,v1=<hex>`, where
`<hex>` is HMAC-SHA256 of `"<t>." + body` under the tenant's secret; receivers recompute it
and reject old timestamps to stop replays. `X-Batchyard-Delivery` names the notice, the same
on every retry, so receivers can drop repeats."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Batchyard-Signature"
DELIVERY_HEADER = "X-Batchyard-Delivery"
EVENT_HEADER = "X-Batchyard-Event"
SIGNING_KEY_ENV = "BATCHYARD_WEBHOOK_SIGNING_KEY"


def tenant_secret(signing_key: str, tenant: str) -> str:
    """The secret notices to `tenant` are signed with."""
    if not signing_key:
        raise ValueError(f"no webhook signing key: set {SIGNING_KEY_ENV}")
    digest = hmac.new(signing_key.encode(), f"tenant:{tenant}".encode(), hashlib.sha256)
    return "whsec_" + digest.hexdigest()


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for `body` sent at `timestamp` (now by default)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    """Whether `header` signs `body` under `secret` within `tolerance_s` of now: what a
    receiver does with a notice."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    expected = signature(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
