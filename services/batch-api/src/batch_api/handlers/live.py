"""Live progress as server-sent events.

A stream opens with the batch's current `progress` and `status` (so a client needs no other
call), then follows the batch's events in order: `progress` (the progress fields with
`batch_id`, `status`, `seq`, `waiting_for` and `deadline_at_risk`) on every snapshot newer
than the last one sent, `status` (`batch_id`, `status`, `reason`) when the status changes,
`job_failed` (`batch_id`, `job_id`, `attempt`, `error`) when an attempt fails. A per-batch
stream also sends `rollback` (`batch_id` and the batch's `rollback`: status, done, total,
percent, ETA) when it opens on a batch that has one. Both streams send `rollback` when a
batch's latest rollback moves on: its events on `rollback.events` make the stream read the
batch's view (at most once a second per batch, until the view shows the rollback ended), so
the frame says what the API's batch says. A per-batch stream sends `end` once the batch is
terminal and closes; the tenant-wide stream never ends.
A comment line every 15 s keeps proxies from closing an idle stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from batch_api.adapters.live import ROLLBACK_EVENTS, LiveFeed, Subscription
from batch_api.domain.lifecycle import TERMINAL
from batch_api.domain.principal import Principal
from batch_api.domain.progress import progress_of
from batch_api.domain.sharing import may_see_batch
from batch_api.handlers.batches import BatchService, public_batch
from batch_api.schemas import BatchPublic
from contracts.envelope import Envelope
from contracts.events import BatchRollingBack, BatchSnapshot, Event, JobFailed

HEARTBEAT_S = 15.0
# The read model can lag the topics: a batch may have paused or ended on Kafka before this
# stream subscribed while its view still said running, and a paused batch then stays quiet.
# A quiet per-batch stream re-reads the view this often and sends what it missed (and `end`).
REFRESH_S = 2.0
ROLLBACK_READ_S = 1.0  # how often at most a stream reads a batch's view for its rollback


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id else "")
    return head.encode() + b"data: " + orjson.dumps(data) + b"\n\n"


@dataclass
class StreamState:
    """What one stream already sent, per batch: the newest seq and the status."""

    seq: dict[str, int] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    rollback: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def rollback_frames(self, batch: BatchPublic) -> list[bytes]:
        """A `rollback` frame if the batch's latest rollback changed since the last one sent."""
        r = batch.rollback
        if r is None or self.rollback.get(batch.id) == (r.rollback_id, r.status, r.done):
            return []
        self.rollback[batch.id] = (r.rollback_id, r.status, r.done)
        return [sse("rollback", {"batch_id": batch.id, **r.model_dump(mode="json")})]

    def frames(self, env: Envelope, event: Event) -> list[bytes]:
        if isinstance(event, JobFailed):
            error = {
                "class": event.error_class,
                "message": event.error_message,
                "retryable": event.retryable,
            }
            data = {
                "batch_id": event.batch_id,
                "job_id": event.job_id,
                "attempt": event.attempt,
                "error": error,
                "awaiting_decision": event.awaiting_decision,
            }
            return [sse("job_failed", data)]
        if not isinstance(event, BatchSnapshot):
            return []
        if env.seq <= self.seq.get(event.batch_id, -1):
            return []
        self.seq[event.batch_id] = env.seq
        progress = progress_of(
            event.counts.model_dump(), dict(event), datetime.now(UTC), event.status
        )
        policy = {"waiting_for": event.waiting_for, "deadline_at_risk": event.deadline_at_risk}
        return self.progress(
            event.batch_id,
            event.status,
            env.seq,
            {**progress, **policy},
            getattr(event, "reason", None),
        )

    def progress(
        self, batch_id: str, status: str, seq: int, progress: dict[str, Any], reason: str | None
    ) -> list[bytes]:
        """`progress` holds the progress fields, `waiting_for` and `deadline_at_risk`."""
        out = [
            sse(
                "progress",
                {"batch_id": batch_id, "status": status, "seq": seq, **progress},
                str(seq),
            )
        ]
        if self.status.get(batch_id) != status:
            self.status[batch_id] = status
            data = {"batch_id": batch_id, "status": status, "reason": reason, "seq": seq}
            out.append(sse("status", data))
        return out


def _progress(batch: BatchPublic) -> dict[str, Any]:
    return {
        **batch.progress.model_dump(),
        "waiting_for": batch.waiting_for,
        "deadline_at_risk": batch.deadline_at_risk,
    }


@dataclass
class _RollbackReads:
    """The batches whose rollback moved on (their events passed) and when each was last read
    from the view: each is read again at most once per `ROLLBACK_READ_S`, until the view
    shows the rollback ended."""

    read: Callable[[str], Awaitable[tuple[list[bytes], bool]]] | None
    pending: set[str] = field(default_factory=set)
    last_read: dict[str, float] = field(default_factory=dict)

    def moved(self, batch_id: str) -> None:
        if self.read is not None:
            self.pending.add(batch_id)

    async def due(self) -> list[bytes]:
        if self.read is None or not self.pending:
            return []
        frames: list[bytes] = []
        now = time.monotonic()
        for batch_id in sorted(self.pending):
            if now - self.last_read.get(batch_id, -ROLLBACK_READ_S) < ROLLBACK_READ_S:
                continue
            if len(self.last_read) > 10_000:
                self.last_read.clear()
            self.last_read[batch_id] = now
            try:
                more, ended = await self.read(batch_id)
            except Exception:  # deleted meanwhile, or the store away: its next event asks again
                more, ended = [], True
            frames += more
            if ended:
                self.pending.discard(batch_id)
        return frames


def _final_status(state: StreamState, env: Envelope, event: Event) -> str | None:
    """The terminal status if this is the batch's newest snapshot and says so."""
    if not isinstance(event, BatchSnapshot) or event.status not in TERMINAL:
        return None
    return event.status if state.seq.get(event.batch_id) == env.seq else None


@dataclass
class LiveEvents:
    batches: BatchService
    feed: LiveFeed

    async def batch_stream(self, batch_id: str, who: Principal) -> AsyncIterator[bytes]:
        """Checks access first (a 404 problem before any byte is sent), then returns the
        stream of one batch."""
        sub = self.feed.subscribe(who.tenant, batch_id)
        try:
            found = await self.batches.load(batch_id, who)
        except Exception:
            self.feed.unsubscribe(sub)
            raise
        public = public_batch(found.doc, found.view)
        state = StreamState()
        seq = int((found.view or {}).get("seq") or 0)
        state.seq[batch_id] = seq
        first = state.progress(batch_id, public.status, seq, _progress(public), public.reason)
        first += state.rollback_frames(public)

        async def refresh() -> tuple[list[bytes], bool]:
            """What the view shows that this stream has not sent yet, and whether it ended."""
            found = await self.batches.load(batch_id, who)
            seq = int((found.view or {}).get("seq") or 0)
            if self.feed.latest_seq.get(batch_id, -1) > seq:
                return [], False  # the view is behind what the live feed saw: not yet
            now = public_batch(found.doc, found.view)
            frames: list[bytes] = []
            if seq > state.seq.get(batch_id, -1):  # progress frames keep strictly rising seqs
                state.seq[batch_id] = seq
                frames = state.progress(batch_id, now.status, seq, _progress(now), now.reason)
            frames += state.rollback_frames(now)
            if now.status in TERMINAL and state.status.get(batch_id) != now.status:
                state.status[batch_id] = now.status
                status = {
                    "batch_id": batch_id,
                    "status": now.status,
                    "reason": now.reason,
                    "seq": state.seq.get(batch_id, seq),
                }
                frames.append(sse("status", status))
            if now.status not in TERMINAL:
                return frames, False
            end = {"batch_id": batch_id, "status": now.status, "seq": state.seq.get(batch_id, seq)}
            return [*frames, sse("end", end)], True

        # A finished batch's stream ends at once, unless the live feed has seen a newer
        # snapshot than the view it opened on: the batch moved on (a rollback or a retry
        # asked for a moment ago), and the refreshes follow the view until it shows where to.
        behind = self.feed.latest_seq.get(batch_id, -1) > seq
        return self._follow(
            sub,
            state,
            first,
            end_when_terminal=None if behind else public.status,
            refresh=refresh,
            rollback_of=lambda b: self._rollback_of(state, b, who),
            per_batch=True,
        )

    async def tenant_stream(self, who: Principal) -> AsyncIterator[bytes]:
        sub = self.feed.subscribe(who.tenant, None)
        seen: dict[str, bool] = {}

        async def visible(batch_id: str) -> bool:
            """Whether `who` may see the batch (remembered per stream: sharing changes
            rarely, and a new stream asks again)."""
            if batch_id not in seen:
                doc = await self.batches.registry.get(batch_id)
                seen[batch_id] = doc is not None and may_see_batch(doc, who)
                if len(seen) > 10_000:
                    seen.pop(next(iter(seen)))
            return seen[batch_id]

        state = StreamState()
        return self._follow(
            sub,
            state,
            [],
            end_when_terminal=None,
            visible=visible,
            rollback_of=lambda b: self._rollback_of(state, b, who),
            per_batch=False,
        )

    async def _rollback_of(
        self, state: StreamState, batch_id: str, who: Principal
    ) -> tuple[list[bytes], bool]:
        """The `rollback` frame if the batch's latest rollback moved on since the last one
        sent, and whether there is no more to read (it ended, or the view has none yet: its
        next event asks again)."""
        found = await self.batches.load(batch_id, who)
        now = public_batch(found.doc, found.view)
        r = now.rollback
        return state.rollback_frames(now), r is None or r.status != "rolling_back"

    async def _follow(
        self,
        sub: Subscription,
        state: StreamState,
        first: list[bytes],
        end_when_terminal: str | None,
        refresh: Callable[[], Awaitable[tuple[list[bytes], bool]]] | None = None,
        visible: Callable[[str], Awaitable[bool]] | None = None,
        rollback_of: Callable[[str], Awaitable[tuple[list[bytes], bool]]] | None = None,
        per_batch: bool = True,
    ) -> AsyncIterator[bytes]:
        quiet_s = 0.0
        rollbacks = _RollbackReads(rollback_of)
        try:
            for frame in first:
                yield frame
            if per_batch and end_when_terminal in TERMINAL:
                seq = state.seq.get(str(sub.batch_id), 0)
                yield sse(
                    "end", {"batch_id": sub.batch_id, "status": end_when_terminal, "seq": seq}
                )
                return
            while True:
                try:
                    env, event = await asyncio.wait_for(sub.queue.get(), REFRESH_S)
                except TimeoutError:
                    quiet_s += REFRESH_S
                    for frame in await rollbacks.due():
                        yield frame
                    if refresh is not None:
                        missed, ended = await refresh()
                        for frame in missed:
                            yield frame
                        if ended:
                            return
                        if missed:
                            quiet_s = 0.0
                            continue
                    if quiet_s >= HEARTBEAT_S:
                        quiet_s = 0.0
                        yield b": keep-alive\n\n"
                    continue
                quiet_s = 0.0
                batch_id = getattr(event, "batch_id", None)
                if visible is not None and batch_id is not None and not await visible(batch_id):
                    continue
                if isinstance(event, (*ROLLBACK_EVENTS, BatchRollingBack)):
                    rollbacks.moved(event.batch_id)
                for frame in [*state.frames(env, event), *await rollbacks.due()]:
                    yield frame
                final = _final_status(state, env, event) if per_batch else None
                if final is not None:
                    yield sse("end", {"batch_id": sub.batch_id, "status": final, "seq": env.seq})
                    return
        finally:
            self.feed.unsubscribe(sub)
