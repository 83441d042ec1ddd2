"""The cron clock: fires schedules' runs. Runs only in the scheduler that holds the lease.

It keeps every schedule it was told of (`ScheduleChanged`, from batch-api) in `sched_schedules`
and in memory. Each tick it fires the runs that are due (`contracts.cron.due_runs`, with the
schedule's catch-up policy) as `ScheduleTriggered` events, then records the next due time.
The event goes out first: a crash in between fires the same run again after the restart,
under the same `run_id` and event id, and batch-api makes one batch per run id. Writes happen
only while this instance's lease is valid."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from contracts.codec import envelope_for
from contracts.cron import due_runs, next_after, run_id
from contracts.envelope import Envelope, deterministic_event_id
from contracts.events import Event, ScheduleChanged, ScheduleTriggered
from contracts.topics import Topics
from scheduler.handlers.engine import LeadershipLost
from servicekit.publisher import EventPublisher, Outgoing

log = logging.getLogger(__name__)
PRODUCER = "scheduler"


class ScheduleStore(Protocol):
    async def all_schedules(self) -> list[dict[str, Any]]: ...
    async def save_schedule(self, doc: dict[str, Any]) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ScheduleClock:
    store: ScheduleStore
    publisher: EventPublisher
    topics: Topics
    fence: Callable[[], bool] = lambda: True
    now: Callable[[], datetime] = utcnow
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    fired: int = 0
    skipped: int = 0

    async def recover(self) -> None:
        self.schedules = {d["_id"]: d for d in await self.store.all_schedules()}
        log.info("tracking %d schedules", len(self.schedules))

    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        for env, event in items:
            if isinstance(event, ScheduleChanged):
                await self._changed(env, event)

    async def _changed(self, env: Envelope, e: ScheduleChanged) -> None:
        known = self.schedules.get(e.schedule_id)
        if known is not None and known["revision"] >= e.revision:
            return  # a repeat or an older change
        timing = (e.cron, e.timezone, e.enabled)
        unchanged = (
            known is not None
            and (
                known["cron"],
                known["timezone"],
                known["enabled"],
            )
            == timing
        )
        next_run_at = known["next_run_at"] if unchanged and known else None
        if e.enabled and not e.deleted and next_run_at is None:
            next_run_at = next_after(e.cron, e.timezone, self.now())
        doc = {
            "_id": e.schedule_id,
            "tenant": env.tenant,
            "cron": e.cron,
            "timezone": e.timezone,
            "enabled": e.enabled and not e.deleted,
            "deleted": e.deleted,
            "catch_up": e.catch_up,
            "revision": e.revision,
            "next_run_at": next_run_at,
        }
        if not self.fence():
            raise LeadershipLost("not writing a schedule without the lease")
        await self.store.save_schedule(doc)
        self.schedules[e.schedule_id] = doc

    async def tick(self) -> int:
        """Fires what is due now; returns how many runs it fired."""
        now = self.now()
        count = 0
        for schedule in list(self.schedules.values()):
            next_run_at = schedule.get("next_run_at")
            if not schedule["enabled"] or next_run_at is None:
                continue
            next_run_at = _aware(next_run_at)
            due = due_runs(
                schedule["cron"], schedule["timezone"], next_run_at, now, schedule["catch_up"]
            )
            if due is None:
                continue
            messages = [self._trigger(schedule, at, missed) for at, missed in due.fire]
            if not self.fence():
                raise LeadershipLost("not firing schedules without the lease")
            if messages:
                await self.publisher.publish(messages)
            updated = {**schedule, "next_run_at": due.next_run_at, "last_fired_at": now}
            await self.store.save_schedule(updated)
            self.schedules[schedule["_id"]] = updated
            self.fired += len(messages)
            self.skipped += due.skipped
            if due.skipped:
                log.warning(
                    "schedule %s: %d missed runs not fired (catch_up=%s)",
                    schedule["_id"],
                    due.skipped,
                    schedule["catch_up"],
                )
            count += len(messages)
        return count

    def _trigger(self, schedule: dict[str, Any], at: datetime, missed: bool) -> Outgoing:
        run = run_id(schedule["_id"], at)
        event = ScheduleTriggered(schedule_id=schedule["_id"], run_at=at, run_id=run, missed=missed)
        env = envelope_for(
            event,
            producer=PRODUCER,
            tenant=schedule["tenant"],
            event_id=deterministic_event_id("schedule-run", run),
        )
        return Outgoing(self.topics.schedules, schedule["_id"], env)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
