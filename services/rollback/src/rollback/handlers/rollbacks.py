"""The rollback service's service layer: a `RollbackRequested` is queued; a queued request
becomes a validated plan, then compensations run one job at a time in the plan's order (the
reverse of completion order). `rollback.handlers.runner` decides when a queued request runs.

Idempotent and restart-safe: the rollback's id is derived from the request's event id; its
plan and the state of its steps are stored (`rollbacks`) before anything is changed, and
progress is stored at checkpoints, so a rollback run again (after a crash, or taken over by
another instance) continues after the last checkpoint, and a finished one only publishes its
outcome again. Every event id is derived from the rollback id, so consumers recognise
repeats. Compensations themselves are idempotent (they restore absolute state), so a step
interrupted between its effect and its checkpoint is safely run again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.codec import envelope_for
from contracts.envelope import Envelope, deterministic_event_id
from contracts.events import (
    BackupValidated,
    BatchDeleted,
    BatchPurged,
    Event,
    RollbackCompleted,
    RollbackFailed,
    RollbackPlanned,
    RollbackProgress,
    RollbackRequested,
    RollbackStarted,
    RollbackStep,
)
from contracts.events.rollback import LISTED_AT_MOST
from contracts.topics import Topics
from jobkit import JobType, RetryableError
from rollback.adapters.backups import Backups, Batches, Plans
from rollback.adapters.queue import Queue
from rollback.domain.plan import (
    BackupSummary,
    Plan,
    changed_keys,
    is_intact,
    plan_rollback,
    summarise,
)
from rollback.domain.request import Request
from servicekit.backups import decode_snapshot
from servicekit.consume import TransientError, is_transient
from servicekit.publisher import EventPublisher, Outgoing

log = logging.getLogger(__name__)
PRODUCER = "rollback"
COMPENSATE_ATTEMPTS = 5
# Progress is stored and announced once per this many steps, or once a second, not after each
# step: the store write and the wait for the broker were most of a step's time.
CHECKPOINT_STEPS = 100
CHECKPOINT_S = 1.0


@dataclass
class CompensationContext:
    """The `jobkit.JobContext` a compensation sees."""

    job_id: str
    batch_id: str
    attempt: int
    params: dict[str, Any]
    cancel_requested: bool = False

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        return None

    def warn(self, message: str) -> None:
        log.warning("compensating %s: %s", self.job_id, message)


@dataclass
class Rollbacks:
    backups: Backups
    publisher: EventPublisher
    topics: Topics
    batches: Batches
    plans: Plans
    job_types: dict[str, JobType]
    queue: Queue
    # A request can come before the reporter has projected its batch (the scheduler asks for
    # a rollback the moment a batch fails; the reporter may be behind or restarting): until
    # this long after the request was made, it is tried again rather than refused.
    unknown_batch_wait_s: float = 60.0
    checkpoint_steps: int = CHECKPOINT_STEPS
    on_queued: Callable[[], None] = lambda: None

    async def handle(self, items: Sequence[tuple[Envelope, Event]]) -> None:
        """Queues requests (the runner runs them); forgets deleted and purged batches."""
        queued = False
        for env, event in items:
            if isinstance(event, RollbackRequested):
                await self.queue.add(Request.of(env, event))  # a repeat changes nothing
                queued = True
            elif isinstance(event, BatchPurged | BatchDeleted):
                await self.queue.drop_batch(event.batch_id)  # idempotent
                await self.plans.drop_batch(event.batch_id)
        if queued:
            self.on_queued()

    async def run(self, request: Request) -> None:
        """Plans the requested rollback (unless it was planned before) and runs it to its
        end, or publishes its outcome again if it has ended. Raises a transient error to be
        run again later, from its last checkpoint."""
        rollback_id, e = request.rollback_id, request.event
        state = await self.plans.get(rollback_id)
        if state is None:
            state = await self.plans.create(await self._new_state(request))
        steps = [RollbackStep.model_validate(s) for s in state["steps"]]
        out = self._announcements(state, steps)
        if state["reason"] is not None:
            out.append(
                RollbackFailed(
                    batch_id=e.batch_id,
                    rollback_id=rollback_id,
                    reason=state["reason"],
                    failed_jobs=_as_map(state["refusals"][:LISTED_AT_MOST]),
                    failed_jobs_total=len(state["refusals"]),
                    dry_run=state["dry_run"],
                )
            )
            await self._publish(request.tenant, rollback_id, out)
            await self._ended_plan(state, {"status": "rollback_failed"})
            return
        if state["dry_run"]:
            out.append(
                RollbackCompleted(batch_id=e.batch_id, rollback_id=rollback_id, dry_run=True)
            )
            await self._publish(request.tenant, rollback_id, out)
            await self._ended_plan(state, {"status": "planned"})
            return
        if state["status"] == "rolled_back":  # ended: its outcome again (a failure has a reason)
            completed = RollbackCompleted(
                batch_id=e.batch_id, rollback_id=rollback_id, compensated_jobs=_done_count(state)
            )
            await self._publish(request.tenant, rollback_id, [*out, completed])
            return
        await self._publish(request.tenant, rollback_id, out)
        await self._execute(request.tenant, state, steps)

    async def _ended_plan(self, state: dict[str, Any], fields: dict[str, Any]) -> None:
        """Records how a plan that runs nothing ended; a dry run's plan goes (its outcome is
        in its events: a check asked for each time the dashboard's dialog opens would
        otherwise leave a plan of every job each time; asked again, it is planned again)."""
        if state["dry_run"]:
            await self.plans.drop(state["_id"])
        else:
            await self.plans.set(state["_id"], fields)

    async def give_up(self, request: Request, reason: str) -> None:
        """Ends a rollback that cannot go on (an unexpected error) as failed, with the
        reason; the jobs restored so far stay restored. A dry run's plan goes, as when it
        ends otherwise."""
        rollback_id, dry_run = request.rollback_id, request.event.dry_run
        if not dry_run:
            await self.plans.set(rollback_id, {"status": "rollback_failed", "reason": reason})
        failure = RollbackFailed(
            batch_id=request.batch_id, rollback_id=rollback_id, reason=reason, dry_run=dry_run
        )
        await self._publish(request.tenant, rollback_id, [failure])
        if dry_run:
            await self.plans.drop(rollback_id)

    async def _new_state(self, request: Request) -> dict[str, Any]:
        e = request.event
        plan = await self._plan(request)
        return {
            "_id": request.rollback_id,
            "batch_id": e.batch_id,
            "tenant": request.tenant,
            "requested_by": e.requested_by,
            "requested_at": request.occurred_at,
            "dry_run": e.dry_run,
            "force": e.force,
            "job_ids": e.job_ids,
            "status": "rollback_failed" if plan.refused else "planned",
            "reason": plan.reason,
            # job ids contain dots, which are not allowed in field names: a list, not a map
            "refusals": _as_list(plan.refusals),
            "steps": [s.model_dump(mode="json") for s in plan.steps],
            "done_count": 0,
            "failed": [],
        }

    async def _plan(self, request: Request) -> Plan:
        e = request.event
        facts = await self.batches.facts(e.batch_id)
        if facts is None:
            waited = (datetime.now(UTC) - request.occurred_at).total_seconds()
            if waited < self.unknown_batch_wait_s:
                raise TransientError(f"batch {e.batch_id} is not in the read model yet")
            return Plan(reason=f"no batch {e.batch_id} is known")
        job_type = self.job_types.get(facts.job_type)
        backups = {b.backup_id: b async for b in self._summaries(e.batch_id, job_type)}
        manual = facts.params.get("manual_backup_id")
        if isinstance(manual, str):
            found = await self.backups.get(manual)
            if found is not None:
                backups[manual] = summarise(found)
        return plan_rollback(
            facts,
            backups,
            job_ids=e.job_ids,
            can_compensate=job_type is not None and job_type.supports_rollback(),
            force=e.force,
        )

    async def _summaries(
        self, batch_id: str, job_type: JobType | None
    ) -> AsyncIterator[BackupSummary]:
        async for backup in self.backups.of_batch(batch_id):
            yield summarise(backup, await self._changed(batch_id, job_type, backup))

    async def _changed(
        self, batch_id: str, job_type: JobType | None, backup: dict[str, Any]
    ) -> list[str]:
        """The keys of what the backup's job left (`after`) that are different now and not
        restored already; none when its job type cannot tell, it recorded nothing (jobs run
        before it did), or the backup is corrupt (refused for that)."""
        if job_type is None or not backup.get("after") or not is_intact(backup):
            return []
        item = job_type.parse_input(backup.get("item") or {})
        snapshot = decode_snapshot(backup["data"])
        ctx = CompensationContext(backup.get("job_id") or backup["_id"], batch_id, 0, {})
        return await _changed_now(job_type, item, snapshot, backup["after"], ctx)

    def _announcements(self, state: dict[str, Any], steps: list[RollbackStep]) -> list[Event]:
        batch_id, rollback_id = state["batch_id"], state["_id"]
        refusals: list[dict[str, str]] = state["refusals"]
        return [
            RollbackStarted(
                batch_id=batch_id,
                rollback_id=rollback_id,
                dry_run=state["dry_run"],
                planned_jobs=len(steps),
            ),
            BackupValidated(
                batch_id=batch_id,
                rollback_id=rollback_id,
                valid=len(steps),
                invalid=sorted(_as_map(refusals))[:LISTED_AT_MOST],
                invalid_total=len(refusals),
            ),
            RollbackPlanned(
                batch_id=batch_id,
                rollback_id=rollback_id,
                dry_run=state["dry_run"],
                steps=steps[:LISTED_AT_MOST],
                refusals=_as_map(refusals[:LISTED_AT_MOST]),
                steps_total=len(steps),
                refusals_total=len(refusals),
            ),
        ]

    async def _execute(self, tenant: str, state: dict[str, Any], steps: list[RollbackStep]) -> None:
        rollback_id, batch_id = ids = state["_id"], state["batch_id"]
        # Steps run in the plan's order and a failure ends the rollback, so what was done is
        # the first `done_count` steps: a count, not the growing list of their ids, which was
        # rewritten after every step (a store write of O(n) bytes per job). A rollback begun
        # before kept that list, `done`.
        done = _done_count(state)
        await self.plans.set(rollback_id, {"status": "rolling_back"})
        since: list[RollbackStep] = []  # compensated since the last checkpoint
        last = time.monotonic()
        force = bool(state.get("force"))
        for position, step in enumerate(steps[done:], start=done):
            problem = await self._compensate(batch_id, step, force)
            if problem is not None:
                done = await self._checkpoint(tenant, ids, done, since, len(steps))
                failed = {step.job_id: problem}
                reason = (
                    f"compensating {step.job_id} failed ({problem}); {done} job(s) were "
                    f"restored, {len(steps) - position - 1} not attempted"
                )
                await self.plans.set(
                    rollback_id,
                    {"status": "rollback_failed", "failed": _as_list(failed), "reason": reason},
                )
                failure = RollbackFailed(
                    batch_id=batch_id, rollback_id=rollback_id, reason=reason, failed_jobs=failed
                )
                await self._publish(tenant, rollback_id, [failure])
                return
            since.append(step)
            if len(since) >= self.checkpoint_steps or time.monotonic() - last >= CHECKPOINT_S:
                done = await self._checkpoint(tenant, ids, done, since, len(steps))
                since, last = [], time.monotonic()
        done = await self._checkpoint(tenant, ids, done, since, len(steps))
        await self.plans.set(
            rollback_id, {"status": "rolled_back", "finished_at": datetime.now(UTC)}
        )
        completed = RollbackCompleted(
            batch_id=batch_id, rollback_id=rollback_id, compensated_jobs=done
        )
        await self._publish(tenant, rollback_id, [completed])

    async def _checkpoint(
        self,
        tenant: str,
        ids: tuple[str, str],
        done: int,
        since: list[RollbackStep],
        total: int,
    ) -> int:
        """Announces the steps compensated since the last checkpoint, then counts them done;
        returns the new count. Their progress events go first: a crash between the two runs
        those steps again (compensations restore absolute state, and in the same order they
        leave the same result) and sends the same events again (same ids), where the other
        order could lose the events of steps already counted."""
        if not since:
            return done
        rollback_id, batch_id = ids
        progress = [
            RollbackProgress(
                batch_id=batch_id, rollback_id=rollback_id, job_id=step.job_id, done=n, total=total
            )
            for n, step in enumerate(since, start=done + 1)
        ]
        await self._publish(tenant, rollback_id, progress, suffixes=[s.job_id for s in since])
        done += len(since)
        await self.plans.set(rollback_id, {"done_count": done})
        return done

    async def _compensate(self, batch_id: str, step: RollbackStep, force: bool) -> str | None:
        """Runs one compensation; returns why it failed, or None. Unless forced, a change
        made after the job since the rollback was planned stops it before anything of the
        job is overwritten."""
        job_type = self.job_types[step.job_type]
        backup = await self.backups.get(step.backup_id)
        if backup is None:
            return f"backup {step.backup_id} disappeared"
        try:
            snapshot = decode_snapshot(backup["data"])
            item = job_type.parse_input(backup.get("item") or {})
        except Exception as exc:
            log.exception("unreadable backup", extra={"job_id": step.job_id})
            return f"{type(exc).__name__}: {exc}"
        if not force and backup.get("after"):
            ctx = CompensationContext(step.job_id, batch_id, 0, {})
            changed = await _changed_now(job_type, item, snapshot, backup["after"], ctx)
            if changed:
                named = ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")
                return f"{named} changed after the job while the rollback ran"
        for attempt in range(1, COMPENSATE_ATTEMPTS + 1):
            try:
                ctx = CompensationContext(step.job_id, batch_id, attempt, {})
                await job_type.compensate(item, snapshot, ctx)
                return None
            except Exception as exc:
                if is_transient(exc):
                    raise  # the request is redelivered and the rollback continues
                if not isinstance(exc, RetryableError):
                    log.exception("compensation failed", extra={"job_id": step.job_id})
                    return f"{type(exc).__name__}: {exc}"
                if attempt == COMPENSATE_ATTEMPTS:
                    return f"{exc.error_class}: {exc}"
                await asyncio.sleep(0.5 * attempt)
        return None

    async def _publish(
        self,
        tenant: str,
        rollback_id: str,
        events: Sequence[Event],
        suffixes: Sequence[str] | None = None,
    ) -> None:
        """Publishes the events at once; each one's id is derived from the rollback's, its type
        and its suffix (a progress event's is its job)."""
        await self.publisher.publish(
            [
                Outgoing(
                    self.topics.rollback_events,
                    ev.batch_id,  # type: ignore[attr-defined]
                    envelope_for(
                        ev,
                        producer=PRODUCER,
                        tenant=tenant,
                        event_id=deterministic_event_id(rollback_id, ev.TYPE, suffix),
                    ),
                )
                for ev, suffix in zip(events, suffixes or [""] * len(events), strict=True)
            ]
        )


async def _changed_now(
    job_type: JobType,
    item: Any,
    snapshot: dict[str, Any],
    after: dict[str, str],
    ctx: CompensationContext,
) -> list[str]:
    """The keys of what a job left (`after`) whose state now is neither that nor restored."""
    now = await job_type.state_of(item, snapshot, ctx)
    return changed_keys(after, now, job_type.state_in(item, snapshot))


def _done_count(state: dict[str, Any]) -> int:
    """How many of the plan's steps are done (a rollback begun before this was a count kept
    the list of their ids, `done`)."""
    return int(state.get("done_count") or len(state.get("done") or ()))


def _as_list(reasons: dict[str, str]) -> list[dict[str, str]]:
    return [{"job_id": job_id, "reason": why} for job_id, why in sorted(reasons.items())]


def _as_map(reasons: list[dict[str, str]]) -> dict[str, str]:
    return {r["job_id"]: r["reason"] for r in reasons}
