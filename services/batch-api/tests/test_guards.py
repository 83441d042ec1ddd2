"""Pure rules of the API's guards: per-key token buckets, and how an audited call is named."""

from __future__ import annotations

import pytest

from batch_api.api.audit import action_of, resource_of
from batch_api.domain.ratelimit import KeyLimiter, Limit, retry_after

pytestmark = pytest.mark.unit


def test_a_key_gets_its_burst_then_its_rate() -> None:
    limiter = KeyLimiter()
    limit = Limit(per_s=2, burst=3)
    assert [limiter.take("k1", limit, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("k1", limit, 0.0)
    assert wait == pytest.approx(0.5)  # one token comes back every half second
    assert limiter.take("k1", limit, 0.25) == pytest.approx(0.25)
    assert limiter.take("k1", limit, 0.5) == 0.0
    # Another key has its own bucket; an idle key refills to its burst, not beyond.
    assert limiter.take("k2", limit, 0.5) == 0.0
    assert [limiter.take("k1", limit, 100.0) for _ in range(4)][-1] > 0


def test_no_limit_and_retry_after_header() -> None:
    limiter = KeyLimiter()
    assert all(limiter.take("k", Limit(per_s=0, burst=1), 0.0) == 0.0 for _ in range(1000))
    assert retry_after(0.01) == "1"
    assert retry_after(1.2) == "2"


def test_a_flood_of_keys_does_not_grow_without_bound() -> None:
    limiter = KeyLimiter(max_keys=10)
    for i in range(25):
        limiter.take(f"k{i}", Limit(per_s=1, burst=1), 0.0)
    assert len(limiter.buckets) <= 10


@pytest.mark.parametrize(
    ("method", "path", "action", "resource"),
    [
        ("POST", "/v1/batches", "batches.create", None),
        ("PATCH", "/v1/batches/b_1", "batches.update", "b_1"),
        ("DELETE", "/v1/batches/b_1", "batches.delete", "b_1"),
        ("POST", "/v1/batches/b_1/actions/pause", "batches.pause", "b_1"),
        ("POST", "/v1/batches/b_1/items", "batches.items", "b_1"),
        ("POST", "/v1/batches/b_1/submit", "batches.submit", "b_1"),
        ("POST", "/v1/batches/b_1/jobs/b_1.4/retry", "batches.jobs.retry", "b_1"),
        ("DELETE", "/v1/keys/key_9", "keys.delete", "key_9"),
        ("POST", "/v1/batches/bulk", "batches.bulk", None),
        ("PATCH", "/v1/library/templates/t_1", "library.templates.update", "t_1"),
        ("POST", "/v1/library/templates", "library.templates.create", None),
        ("POST", "/v1/library/templates/import", "library.templates.import", None),
        ("POST", "/v1/library/consolidations", "library.consolidations.create", None),
        ("POST", "/v1/library/consolidations/plan", "library.consolidations.plan", None),
        ("POST", "/v1/library/conflicts/c_1/decision", "library.conflicts.decision", "c_1"),
    ],
)
def test_audited_calls_are_named_by_what_they_do(
    method: str, path: str, action: str, resource: str | None
) -> None:
    assert action_of(method, path) == action
    assert resource_of(path) == resource
