"""Runs the queued rollbacks beside the consumer, a few at a time.

A rollback used to run inside the handler of its request, so every request behind it, other
batches' rollbacks too, waited until it had restored its last job; and a consumer that does
not poll for `max.poll.interval.ms` (300 s) leaves its group (aiokafka's heartbeat routine),
which at ~450 steps a second a rollback of ~130,000 jobs would outlast (read in aiokafka's
code, not run). Now the handler queues the request (`rollback.adapters.queue`) and returns;
this runner plans and runs what is queued.

- Rollbacks of different batches run side by side, up to `concurrency`; those of one batch
  one after another, in the order they were asked for.
- It holds a lease on each rollback it runs and renews it; an instance whose process died is
  taken over once its lease has run out, a stopping one gives its leases up. A run whose
  lease was taken stops (the other instance goes on from the last checkpoint). An instance
  is named by its host and port (`owner`), so one restarted after a crash goes on with its
  rollbacks at once rather than after their leases.
- A failure that says "not now" (the store or Kafka away, the batch not projected yet) is
  tried again after a growing backoff; any other ends the rollback as failed, with the error
  as its reason (it used to be dead-lettered, and the rollback stayed `rolling_back`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rollback.adapters.queue import Queue
from rollback.domain.request import Request
from servicekit.consume import is_transient

log = logging.getLogger(__name__)
CONCURRENCY = 2
LEASE_S = 30.0
SCAN_S = 5.0
BACKOFF_MAX_S = 30.0


def instance_name(port: int) -> str:
    """This instance's name, the same after a restart: two instances cannot share a host
    and a port (a pod's name is its host name)."""
    return f"{socket.gethostname()}:{port}"


@dataclass
class Runner:
    queue: Queue
    run: Callable[[Request], Awaitable[None]]
    give_up: Callable[[Request, str], Awaitable[None]]
    owner: str
    concurrency: int = CONCURRENCY
    lease_s: float = LEASE_S
    scan_s: float = SCAN_S
    _running: dict[str, tuple[Request, asyncio.Task[None]]] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=dict)
    _retry_at: dict[str, float] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def running(self) -> Mapping[str, asyncio.Task[None]]:
        return {rollback_id: task for rollback_id, (_, task) in self._running.items()}

    def wake(self) -> None:
        """Something was queued or ended: look now, not at the next scan."""
        self._wake.set()

    async def serve(self) -> None:
        """Starts queued rollbacks as they come and as others end, until cancelled; then
        stops the runs and gives their leases up."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self.round()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    log.warning("cannot read the rollback queue now: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_look())
        finally:
            await self.stop()

    async def round(self) -> list[asyncio.Task[None]]:
        """Starts the queued rollbacks that may start now; returns their tasks.

        A batch's rollbacks run one after the other, in the order asked. Dry runs (checks)
        change nothing, so they wait for no rollback and hold none up: the dashboard asks
        for one each time its rollback dialog opens, and a rollback confirmed a moment later
        would otherwise wait for the check's planning. Rollbacks are started first, and dry
        runs never take the last free slot."""
        started: list[asyncio.Task[None]] = []
        busy = {r.batch_id for r, _ in self._running.values() if not r.event.dry_run}
        first_of_batch: set[str] = set()
        now = time.monotonic()
        pending = await self.queue.pending()
        checks_at_most = max(1, self.concurrency - 1)
        for request in sorted(pending, key=lambda r: r.event.dry_run):  # stable: in order
            rollback_id = request.rollback_id
            dry_run = request.event.dry_run
            if not dry_run:
                if request.batch_id in first_of_batch:
                    continue  # an earlier rollback of the batch has not ended
                first_of_batch.add(request.batch_id)
                if request.batch_id in busy:
                    continue
            if rollback_id in self._running:
                continue
            if len(self._running) >= self.concurrency:
                break
            checks = sum(1 for r, _ in self._running.values() if r.event.dry_run)
            if dry_run and checks >= checks_at_most:
                continue
            if self._retry_at.get(rollback_id, 0.0) > now:
                continue
            if not await self.queue.claim(rollback_id, self.owner, self._until()):
                continue  # another instance runs it
            task = asyncio.create_task(self._run(request), name=f"rollback {rollback_id}")
            self._running[rollback_id] = (request, task)
            started.append(task)
        return started

    async def stop(self) -> None:
        """Stops every run and gives its lease up, so another instance goes on at once."""
        runs = dict(self._running)
        for _, task in runs.values():
            task.cancel()
        for rollback_id, (_, task) in runs.items():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await self.queue.release(rollback_id, self.owner)

    def _next_look(self) -> float:
        """Seconds until the next scan, or sooner the next retry that falls due."""
        now = time.monotonic()
        return min([self.scan_s, *(at - now for at in self._retry_at.values() if at > now)])

    def _until(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.lease_s)

    async def _run(self, request: Request) -> None:
        rollback_id = request.rollback_id
        this = asyncio.current_task()
        assert this is not None
        keeper = asyncio.create_task(self._keep_lease(rollback_id, this))
        try:
            try:
                await self.run(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("rollback %s failed", rollback_id)
                await self.give_up(request, f"{type(exc).__name__}: {exc}")
            await self.queue.done(rollback_id)
            self._failures.pop(rollback_id, None)
            self._retry_at.pop(rollback_id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # "not now": again after a backoff
            failures = self._failures[rollback_id] = self._failures.get(rollback_id, 0) + 1
            delay = min(0.2 * 2**failures, BACKOFF_MAX_S)
            self._retry_at[rollback_id] = time.monotonic() + delay
            log.warning("rollback %s is tried again in %.1f s: %s", rollback_id, delay, exc)
            with contextlib.suppress(Exception):
                await self.queue.release(rollback_id, self.owner)
        finally:
            keeper.cancel()
            self._running.pop(rollback_id, None)
            self.wake()

    async def _keep_lease(self, rollback_id: str, run: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                kept = await self.queue.claim(rollback_id, self.owner, self._until())
            except Exception as exc:  # the run itself finds out whether the store is away
                log.warning("cannot renew the lease of rollback %s: %s", rollback_id, exc)
                continue
            if not kept:
                log.warning("rollback %s was taken over by another instance", rollback_id)
                run.cancel()
                return
