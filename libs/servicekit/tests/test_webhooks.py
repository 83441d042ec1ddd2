"""Webhook signatures: what the reporter signs, a receiver verifies."""

from __future__ import annotations

import time

import pytest

from servicekit.webhooks import signature, tenant_secret, verify

pytestmark = pytest.mark.unit


def test_each_tenant_has_its_own_secret_from_the_one_key() -> None:
    assert tenant_secret("k", "a") == tenant_secret("k", "a")
    assert tenant_secret("k", "a") != tenant_secret("k", "b")
    assert tenant_secret("k", "a") != tenant_secret("other", "a")
    with pytest.raises(ValueError, match="BATCHYARD_WEBHOOK_SIGNING_KEY"):
        tenant_secret("", "a")


def test_a_signature_verifies_only_for_its_body_secret_and_time() -> None:
    secret, body = tenant_secret("k", "a"), b'{"event":"batch.finished"}'
    header = signature(secret, body)
    assert verify(secret, body, header)
    assert not verify(secret, body + b" ", header)
    assert not verify(tenant_secret("k", "b"), body, header)
    stale = signature(secret, body, int(time.time()) - 600)
    assert not verify(secret, body, stale)
    assert not verify(secret, body, "v1=abc")
