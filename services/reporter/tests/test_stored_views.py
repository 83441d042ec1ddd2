"""Job views are stored packed (`servicekit.jobviews`): whatever events a view folded, in
whatever order, it reads back from the store exactly as the reporter folded it, and the usual
view (one attempt, completed) takes well under half the bytes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import pytest
from bson.codec_options import CodecOptions

from contracts.codec import envelope_for
from contracts.envelope import Envelope
from contracts.events import (
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobRetryScheduled,
    JobStarted,
    RollbackProgress,
)
from reporter.domain.projection import JobEvent, fold_compensation, fold_job
from servicekit.jobviews import pack, unpack

pytestmark = pytest.mark.unit
# microseconds on purpose: the store keeps milliseconds
T0 = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
B, J = "b_1", "b_1.7"
STORE = CodecOptions(tz_aware=True)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(e: JobEvent, seconds: float) -> tuple[Envelope, JobEvent]:
    env = envelope_for(e, producer="t")
    return env.model_copy(update={"occurred_at": at(seconds + 0.0004)}), e


def started(attempt: int, executor: str = "executor-1") -> tuple[Envelope, JobEvent]:
    return ev(
        JobStarted(
            job_id=J, batch_id=B, attempt=attempt, executor_id=executor, started_at=at(attempt)
        ),
        attempt,
    )


def completed(attempt: int, output: dict[str, Any] | None = None, **kw: Any) -> Any:
    """As executors report it: `metrics` are the output's numbers unless given."""
    out = {"n": 3, "ok": True, "name": "x"} if output is None else output
    kw.setdefault("metrics", {"n": 3.0} if output is None else {})
    return ev(
        JobCompleted(
            job_id=J,
            batch_id=B,
            attempt=attempt,
            executor_id="executor-1",
            started_at=at(attempt),
            finished_at=at(attempt + 0.5),
            duration_ms=500.25,
            output=out,
            **kw,
        ),
        attempt + 0.5,
    )


def failed(attempt: int, *, retryable: bool = True, cancelled: bool = False) -> Any:
    return ev(
        JobFailed(
            job_id=J,
            batch_id=B,
            attempt=attempt,
            executor_id="executor-1",
            started_at=at(attempt),
            finished_at=at(attempt + 0.5),
            duration_ms=500,
            error_class="Flaky",
            error_message="it broke",
            retryable=retryable,
            cancelled=cancelled,
        ),
        attempt + 0.5,
    )


def retry(attempt: int) -> Any:
    return ev(
        JobRetryScheduled(job_id=J, batch_id=B, attempt=attempt, retry_at=at(9)), attempt + 0.7
    )


def cancel(attempt: int) -> Any:
    return ev(JobCancelled(job_id=J, batch_id=B, attempt=attempt, reason="by hand"), attempt + 0.8)


HISTORIES = {
    "ran once": [started(1), completed(1)],
    "empty output": [started(1), completed(1, output={})],
    "metrics of its own": [started(1), completed(1, metrics={"rows": 2.0})],
    "failed for good": [started(1), failed(1, retryable=False)],
    "cancelled while running": [started(1), failed(1, cancelled=True)],
    "retried then ran": [started(1), failed(1), retry(1), started(2, "executor-2"), completed(2)],
    "cancelled while waiting": [started(1), failed(1), retry(1), cancel(1)],
    "cancelled before it ran": [cancel(0)],
}


def store(doc: dict[str, Any]) -> dict[str, Any]:
    """What reading `doc` back from the store gives (BSON; milliseconds)."""
    stored: dict[str, Any] = bson.decode(bson.encode({"v": doc}), codec_options=STORE)["v"]
    return stored


def views_of(history: list[Any]) -> list[dict[str, Any]]:
    """Every view the reporter can hold on the way: each prefix, in every order."""
    views = []
    for n in range(1, len(history) + 1):
        for order in itertools.permutations(history[:n]):
            view: dict[str, Any] | None = None
            for env, e in order:
                view = fold_job(view, env, e)
            assert view is not None
            views.append(view)
    return views


@pytest.mark.parametrize("name", HISTORIES)
def test_every_view_reads_back_as_it_was_folded(name: str) -> None:
    for view in views_of(HISTORIES[name]):
        assert unpack(store(pack(view)), B, 7) == store(view)


def test_a_compensated_view_reads_back_with_its_rollback() -> None:
    env, e = ev(RollbackProgress(batch_id=B, job_id=J, rollback_id="r1", done=1, total=1), 5)
    view = fold_compensation(views_of(HISTORIES["ran once"])[-1], env, e)
    assert view is not None
    back = unpack(store(pack(view)), B, 7)
    assert back == store(view)
    assert back["rollback_id"] == "r1"


def test_a_view_stored_whole_reads_back_unchanged() -> None:
    view = views_of(HISTORIES["ran once"])[-1]
    assert unpack(store(view), B, 7) == store(view)


def test_the_usual_view_is_stored_in_well_under_half_its_bytes() -> None:
    view = views_of(HISTORIES["ran once"])[-1]
    full, packed = len(bson.encode(view)), len(bson.encode(pack(view)))
    assert packed < 0.45 * full, (packed, full)


def test_what_the_packed_view_keeps_is_what_no_other_field_says() -> None:
    assert set(pack(views_of(HISTORIES["ran once"])[-1])) == {
        "attempt",
        "version",
        "updated_at",
        "status",
        "executor",
        "started_at",
        "finished_at",
        "duration_ms",
        "output",
    }
    retried = pack(views_of(HISTORIES["retried then ran"])[-1])
    assert set(retried["attempts"]) == {"1", "2"}
    assert set(retried["errors"]) == {"1"}
    assert pack(views_of(HISTORIES["metrics of its own"])[-1])["metrics"] == {"rows": 2.0}
