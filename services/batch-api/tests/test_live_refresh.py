"""A per-batch event stream that missed events (they passed before it subscribed, or while a
client reconnected) still shows what the read model says once the stream is quiet: a pause
nobody will announce again, then the end."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest

from batch_api.adapters.live import LiveFeed
from batch_api.domain.principal import Principal
from batch_api.handlers import live
from batch_api.handlers.batches import BatchService, Loaded
from batch_api.handlers.live import LiveEvents
from contracts.codec import encode, envelope_for
from contracts.events import Event, RollbackCompleted, RollbackProgress, RollbackStarted
from contracts.topics import Topics

pytestmark = pytest.mark.unit

WHO = Principal(key_id="k", tenant="t", user="ops", role="admin")
DOC = {
    "_id": "b_1",
    "name": "nightly",
    "job_type": "demo.sleep",
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    "total": 10,
}


@dataclass
class ChangingViews:
    """The batch's read model as successive reads see it (the last one repeats)."""

    views: list[dict[str, Any]]

    async def load(self, batch_id: str, who: Principal) -> Loaded:
        view = self.views.pop(0) if len(self.views) > 1 else self.views[0]
        return Loaded(DOC, view, view["status"])


def view(status: str, seq: int, completed: int) -> dict[str, Any]:
    counts = {"total": 10, "completed": completed, "pending": 10 - completed}
    return {"status": status, "seq": seq, "counts": counts}


def frames(raw: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in raw:
        lines = frame.decode().strip().splitlines()
        name = lines[0].removeprefix("event: ")
        out.append((name, orjson.loads(lines[-1].removeprefix("data: "))))
    return out


async def test_a_finished_batch_that_moved_on_is_followed_not_ended_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The live feed saw a newer snapshot (a rollback asked for a moment ago) than the view
    the stream opens on: the stream waits for the view rather than end on the old status."""
    monkeypatch.setattr(live, "REFRESH_S", 0.01)
    reads = ChangingViews(
        [
            view("completed", 7, 10),  # the stream opens on the view before the request
            view("completed", 7, 10),  # still behind
            view("rolling_back", 8, 10),
            view("rolled_back", 9, 10),
        ]
    )
    feed = LiveFeed("127.0.0.1:1", Topics("t."))
    feed.latest_seq["b_1"] = 8
    service = LiveEvents(cast(BatchService, reads), feed)
    sent = frames([frame async for frame in await service.batch_stream("b_1", WHO)])
    statuses = [d["status"] for name, d in sent if name == "status"]
    assert statuses == ["completed", "rolling_back", "rolled_back"]
    assert sent[-1] == ("end", {"batch_id": "b_1", "status": "rolled_back", "seq": 9})
    assert [name for name, _ in sent].count("end") == 1


async def test_a_quiet_stream_sends_the_missed_pause_then_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "REFRESH_S", 0.01)
    reads = ChangingViews(
        [
            view("running", 3, 4),  # the stream opens
            view("running", 3, 4),  # quiet: nothing new
            view("paused", 4, 5),  # paused meanwhile; its event never reached this stream
            view("paused", 4, 5),
            view("completed", 7, 10),
        ]
    )
    service = LiveEvents(cast(BatchService, reads), LiveFeed("127.0.0.1:1", Topics("t.")))
    stream = await service.batch_stream("b_1", WHO)
    sent = frames([frame async for frame in stream])

    names = [name for name, _ in sent]
    assert names == ["progress", "status", "progress", "status", "progress", "status", "end"]
    assert [d["status"] for name, d in sent if name == "status"] == [
        "running",
        "paused",
        "completed",
    ]
    assert [d["seq"] for name, d in sent if name == "progress"] == [3, 4, 7]
    assert sent[-1][1] == {"batch_id": "b_1", "status": "completed", "seq": 7}


async def test_a_rolling_back_batch_streams_its_rollback_as_it_moves_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "REFRESH_S", 0.01)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def rolling(status: str, seq: int, done: int, ended: bool = False) -> dict[str, Any]:
        record: dict[str, Any] = {"started_at": at, "total": 300, "done": done}
        if ended:
            record |= {"status": "rolled_back", "finished_at": at, "reason": None}
        return {**view(status, seq, 10), "rollbacks": {"r_1": record}}

    reads = ChangingViews(
        [
            rolling("rolling_back", 8, 0),  # the stream opens
            rolling("rolling_back", 8, 100),
            rolling("rolling_back", 8, 100),  # no change: no frame
            rolling("rolling_back", 8, 200),
            rolling("rolled_back", 9, 300, ended=True),
        ]
    )
    service = LiveEvents(cast(BatchService, reads), LiveFeed("127.0.0.1:1", Topics("t.")))
    sent = frames([frame async for frame in await service.batch_stream("b_1", WHO)])

    rollbacks = [d for name, d in sent if name == "rollback"]
    assert [(d["done"], d["status"]) for d in rollbacks] == [
        (0, "rolling_back"),
        (100, "rolling_back"),
        (200, "rolling_back"),
        (300, "rolled_back"),
    ]
    assert {d["batch_id"] for d in rollbacks} == {"b_1"}
    assert rollbacks[-1]["percent"] == 100.0
    assert [name for name, _ in sent][-4:] == ["progress", "status", "rollback", "end"]
    assert sent[-1] == ("end", {"batch_id": "b_1", "status": "rolled_back", "seq": 9})


def rollback_view(done: int, ended: bool = False) -> dict[str, Any]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    record: dict[str, Any] = {"started_at": at, "total": 300, "done": done}
    if ended:
        record |= {"status": "rolled_back", "finished_at": at, "reason": None}
    status = "rolled_back" if ended else "rolling_back"
    return {**view(status, 9 if ended else 8, 10), "rollbacks": {"r_1": record}}


def rollback_event(kind: str, done: int = 0, tenant: str = "t") -> bytes:
    event: Event
    if kind == "started":
        event = RollbackStarted(batch_id="b_1", rollback_id="r_1", planned_jobs=300)
    elif kind == "progress":
        event = RollbackProgress(
            batch_id="b_1", rollback_id="r_1", job_id=f"b_1.{done}", done=done, total=300
        )
    else:
        event = RollbackCompleted(batch_id="b_1", rollback_id="r_1", compensated_jobs=300)
    return encode(envelope_for(event, producer="rollback", tenant=tenant))


class Registry:
    async def get(self, batch_id: str) -> dict[str, Any]:
        return {**DOC, "tenant": "t"}


async def test_the_tenant_stream_sends_a_batchs_rollback_as_its_events_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It had no `rollback` frames: a rollback of one of the tenant's batches was only seen
    in the per-batch stream."""
    monkeypatch.setattr(live, "ROLLBACK_READ_S", 0.0)
    reads = ChangingViews([rollback_view(0), rollback_view(100), rollback_view(300, True)])
    reads.registry = Registry()  # type: ignore[attr-defined]
    feed = LiveFeed("127.0.0.1:1", Topics("t."))
    stream = await LiveEvents(cast(BatchService, reads), feed).tenant_stream(WHO)

    async def next_frame() -> tuple[str, dict[str, Any]]:
        return frames([await asyncio.wait_for(anext(stream), 5)])[0]

    first = asyncio.ensure_future(next_frame())
    await asyncio.sleep(0)  # the stream subscribes
    feed._dispatch(rollback_event("started", tenant="other"))  # another tenant's: not read
    feed._dispatch(rollback_event("started"))
    name, data = await first
    assert (name, data["done"], data["status"]) == ("rollback", 0, "rolling_back")
    feed._dispatch(rollback_event("progress", 100))
    name, data = await next_frame()
    assert (name, data["batch_id"], data["done"]) == ("rollback", "b_1", 100)
    feed._dispatch(rollback_event("completed"))
    name, data = await next_frame()
    assert (name, data["done"], data["status"], data["percent"]) == (
        "rollback",
        300,
        "rolled_back",
        100.0,
    )
    await stream.aclose()


def test_the_feed_passes_a_rollbacks_progress_at_most_twice_a_second() -> None:
    feed = LiveFeed("127.0.0.1:1", Topics("t."))
    sub = feed.subscribe("t", "b_1")
    feed._dispatch(rollback_event("started"))
    for done in range(1, 301):
        feed._dispatch(rollback_event("progress", done))
    feed._dispatch(rollback_event("completed"))
    passed = [sub.queue.get_nowait()[1] for _ in range(sub.queue.qsize())]
    assert [type(e).__name__ for e in passed] == [
        "RollbackStarted",
        "RollbackProgress",
        "RollbackCompleted",
    ]
