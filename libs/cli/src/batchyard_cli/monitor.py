"""Watching batches until they finish: a `Board` (pure state: what is known of each watched
batch) fed by server-sent events when the API offers them, else by polling `GET`.

`watch` drives it: it follows `GET /v1/batches/{id}/events` for one batch or `GET /v1/events`
for several, re-reads a batch with `GET` when its stream says it ended (for the final
counts), reconnects when a stream drops, and falls back to polling every `interval` seconds
when the server has no stream or it keeps failing."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from batchyard_cli.client import BatchFilter, BatchyardClient, StreamUnavailable
from batchyard_cli.errors import ApiError, NotFound, ServerError, Unreachable
from batchyard_cli.exit_codes import (
    FINAL_STATUSES,
    SUCCESSFUL_FINAL_STATUSES,
    ExitCode,
    for_final_statuses,
)
from batchyard_cli.resources import Batch
from batchyard_cli.sse import ServerEvent

ACTIVE_STATUSES = ("queued", "running", "paused", "retrying", "rolling_back")
MAX_FAILURES_SHOWN = 10
STREAM_RETRIES = 3
POLL_RETRIES = 10
FINAL_ROLLBACK_READS = 10

ChangeKind = Literal["snapshot", "progress", "status", "job_failed", "rollback", "end"]
FailureKind = Literal["failed", "retryable", "awaiting"]
"""A failed attempt: an error (`failed`), one its job type says may pass if tried again
(`retryable`: the batch retries it while it has attempts left), or a job parked for a
person's decision (`awaiting`: no error of the batch)."""
ROLLBACK_STATUSES = frozenset({"rolling_back", "rolled_back", "rollback_failed"})


@dataclass
class Tracked:
    """What the monitor knows of one batch."""

    batch_id: str
    name: str
    status: str
    progress: dict[str, Any]
    reason: str | None = None
    finished_at: str | None = None
    failures_seen: int = 0
    ended: bool = False
    seq: int = 0
    """The `seq` of the newest batch event shown (GET answers and progress frames carry it):
    an answer or frame with a lower one is older than what is shown."""
    rollback: dict[str, Any] | None = None
    """The batch's latest rollback (`rollback` of a GET answer or a stream frame)."""

    @property
    def rolling_back(self) -> dict[str, Any] | None:
        """The rollback to show instead of the jobs' progress: while the batch rolls back and
        once it ended by one."""
        return self.rollback if self.status in ROLLBACK_STATUSES else None

    restart_from: tuple[str, str | None] | None = None
    """Set for a batch an action (retry) restarts from a final status: that (status,
    finished_at) is stale, so the batch counts as finished only once it changed."""

    @property
    def finished(self) -> bool:
        if self.restart_from is not None:
            return False
        return self.ended or self.status in FINAL_STATUSES


@dataclass(frozen=True)
class Change:
    """One thing that happened to a watched batch, for the views to show."""

    batch_id: str
    kind: ChangeKind
    status_changed: bool = False
    message: str | None = None
    failure: FailureKind | None = None
    """Of a `job_failed` change: how the views show the attempt's end."""


@dataclass
class Board:
    """The watched batches, updated from `GET` answers and stream events."""

    tracked: dict[str, Tracked] = field(default_factory=dict)
    succeeded: frozenset[str] = SUCCESSFUL_FINAL_STATUSES
    """The final statuses that count as success for the exit code."""

    @classmethod
    def of(
        cls,
        batches: Iterable[Batch],
        restarting: Iterable[str] = (),
        succeeded: frozenset[str] = SUCCESSFUL_FINAL_STATUSES,
    ) -> Board:
        """The board of `batches`; those in `restarting` were just restarted by an action,
        so their current final status does not count."""
        board = cls(succeeded=succeeded)
        for batch in batches:
            board.apply_batch(batch)
        for batch_id in restarting:
            known = board.tracked.get(batch_id)
            if known is not None and known.status in FINAL_STATUSES:
                known.restart_from = (known.status, known.finished_at)
        return board

    @property
    def unfinished(self) -> list[str]:
        return [b.batch_id for b in self.tracked.values() if not b.finished]

    def all_finished(self) -> bool:
        return not self.unfinished

    def exit_code(self) -> ExitCode:
        """0 when every watched batch ended in a `succeeded` status; 1 when any ended
        otherwise."""
        return for_final_statuses((b.status for b in self.tracked.values()), self.succeeded)

    def apply_batch(self, batch: Batch) -> Change:
        known = self.tracked.get(batch["id"])
        before = known.status if known else None
        if known is None:
            known = self.tracked[batch["id"]] = Tracked(
                batch["id"], batch["name"], batch["status"], dict(batch["progress"])
            )
        _take_rollback(known, batch.get("rollback"))
        # The read model can be behind the stream: an answer older than what is shown (a lower
        # `seq`) changes nothing. Once the stream said the batch finished, a read model still
        # catching up does not bring it back to life, nor take its counts back to fewer
        # finished jobs (for servers that send no `seq`).
        seq = _seq(batch)
        if seq is not None and seq < known.seq:
            return Change(batch["id"], "snapshot")
        known.seq = max(known.seq, seq or 0)
        finished = known.finished
        if not (finished and batch["status"] not in FINAL_STATUSES):
            known.status = batch["status"]
            known.reason = batch.get("reason")
            if not finished or _done(dict(batch["progress"])) >= _done(known.progress):
                known.progress = dict(batch["progress"])
            known.finished_at = batch.get("finished_at")
        if known.restart_from not in (None, (known.status, known.finished_at)):
            known.restart_from = None
        return Change(batch["id"], "snapshot", status_changed=before != known.status)

    def apply_event(self, event: ServerEvent, stream_batch_id: str | None = None) -> Change | None:
        """Applies one stream event; None when it is about a batch not watched here, or not
        one this monitor knows (heartbeats never reach here: they are comments)."""
        data = _decode(event.data)
        batch_id = str(data.get("batch_id") or stream_batch_id or "")
        if not batch_id and "job_id" in data:
            batch_id = str(data["job_id"]).rpartition(".")[0]
        known = self.tracked.get(batch_id)
        if known is None:
            return None
        before = known.status
        if event.event == "progress":
            seq = _seq(data)
            if seq is not None and seq < known.seq:
                return None  # older than what a GET already showed
            known.seq = max(known.seq, seq or 0)
            nested = data.get("progress")
            counts: dict[str, Any] = nested if isinstance(nested, dict) else data
            known.progress.update(
                {k: v for k, v in counts.items() if k in known.progress or k == "total"}
            )
            self._set_status(known, data)
            return Change(batch_id, "progress", status_changed=before != known.status)
        if event.event == "status":
            seq = _seq(data)
            if seq is not None and seq < known.seq:
                return None  # the status of an older frame
            self._set_status(known, data)
            return Change(batch_id, "status", status_changed=before != known.status)
        if event.event == "rollback":
            _take_rollback(known, {k: v for k, v in data.items() if k != "batch_id"})
            return Change(batch_id, "rollback")
        if event.event == "job_failed":
            known.failures_seen += 1
            kind = _failure_kind(data)
            return Change(batch_id, "job_failed", message=_failure_text(data), failure=kind)
        if event.event == "end":
            if known.restart_from is not None:
                return None  # the end of the run before the restart
            seq = _seq(data)
            if seq is not None and seq < known.seq:
                # a stream opened on a read model behind what was shown (the batch moved on
                # meanwhile: a rollback asked for just before): not its end
                return None
            self._set_status(known, data)
            known.ended = True
            return Change(batch_id, "end", status_changed=before != known.status)
        return None

    @staticmethod
    def _set_status(known: Tracked, data: dict[str, Any]) -> None:
        status = data.get("status")
        if isinstance(status, str) and status:
            known.status = status
            if status not in FINAL_STATUSES:
                known.restart_from = None
        if "reason" in data:
            known.reason = data.get("reason")


def _take_rollback(known: Tracked, rollback: Mapping[str, Any] | None) -> None:
    """Takes a rollback's state unless it is the one shown, with fewer jobs done (the read
    model behind the stream)."""
    if not isinstance(rollback, Mapping) or not rollback.get("rollback_id"):
        return
    shown = known.rollback
    if (
        shown is not None
        and shown.get("rollback_id") == rollback["rollback_id"]
        and int(rollback.get("done") or 0) < int(shown.get("done") or 0)
    ):
        return
    known.rollback = dict(rollback)


def _seq(data: Mapping[str, object]) -> int | None:
    """The `seq` an answer or a frame carries, if any."""
    seq = data.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _done(progress: dict[str, Any]) -> int:
    """How many jobs a progress shows as finished."""
    keys = ("completed", "failed", "skipped", "cancelled")
    return sum(int(progress.get(k) or 0) for k in keys)


def _decode(data: str) -> dict[str, Any]:
    if not data.strip():
        return {}
    try:
        decoded = json.loads(data)
    except json.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _failure_kind(data: dict[str, Any]) -> FailureKind:
    if data.get("awaiting_decision"):
        return "awaiting"
    error = data.get("error")
    return "retryable" if isinstance(error, dict) and error.get("retryable") else "failed"


def _failure_text(data: dict[str, Any]) -> str:
    error = data.get("error")
    job = data.get("job_id", "?")
    if data.get("awaiting_decision"):
        said = error.get("message") if isinstance(error, dict) else None
        return f"{job}: {said}" if said else f"{job} awaits a decision"
    if isinstance(error, dict):
        kind = error.get("class") or "Error"
        text = f"{kind}: {error.get('message', '')}"
        if error.get("retryable"):
            text += " (retryable)"
    else:
        text = str(error or "failed")
    return f"{job} {text}"


class View(Protocol):
    """Shows the board: started once, updated per change, stopped once."""

    def start(self, board: Board) -> None: ...
    def update(self, board: Board, change: Change) -> None: ...
    def note(self, message: str) -> None: ...
    def stop(self, board: Board) -> None: ...


def active_batches(client: BatchyardClient) -> list[Batch]:
    """Every batch in an active status, oldest first (bounded by one page per status)."""
    found: dict[str, Batch] = {}
    for status in ACTIVE_STATUSES:
        batches, _ = client.iter_batches(BatchFilter(status=status), limit=500)
        for batch in batches:
            if batch["status"] in ACTIVE_STATUSES:
                found[batch["id"]] = batch
    return sorted(found.values(), key=lambda b: (b["created_at"], b["id"]))


@dataclass
class Watcher:
    """Follows the board's batches until all finished."""

    client: BatchyardClient
    board: Board
    view: View
    interval: float = 1.0
    use_stream: bool = True
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> ExitCode:
        stream_failures = 0
        poll_failures = 0
        while not self.board.all_finished():
            if self.use_stream:
                try:
                    self._follow_stream()
                    stream_failures = 0
                    if not self.board.all_finished():  # the server closed the stream early
                        self.sleep(self.interval)
                except StreamUnavailable as exc:
                    self.view.note(f"{exc.message}; polling every {self.interval:g}s")
                    self.use_stream = False
                except (Unreachable, ServerError) as exc:
                    stream_failures += 1
                    if stream_failures >= STREAM_RETRIES:
                        self.view.note(f"event stream failing ({exc.message}); polling instead")
                        self.use_stream = False
                    else:
                        self.sleep(self.interval)
                continue
            try:
                self.refresh(self.board.unfinished)
                poll_failures = 0
            except (Unreachable, ServerError) as exc:
                poll_failures += 1
                if poll_failures >= POLL_RETRIES:
                    raise
                self.view.note(f"{exc.message}; retrying")
            if not self.board.all_finished():
                self.sleep(self.interval)
        self._settle_rollbacks()
        return self.board.exit_code()

    def refresh(self, batch_ids: Iterable[str]) -> None:
        """Re-reads batches with `GET` (a batch deleted meanwhile counts as ended)."""
        for batch_id in list(batch_ids):
            try:
                batch = self.client.get_batch(batch_id)
            except NotFound:
                known = self.board.tracked[batch_id]
                known.ended = True
                self.view.update(self.board, Change(batch_id, "end", message="deleted"))
                continue
            self.view.update(self.board, self.board.apply_batch(batch))

    def _follow_stream(self) -> None:
        unfinished = self.board.unfinished
        target = unfinished[0] if len(unfinished) == 1 else None
        with self.client.events(target) as events:
            # Anything that happened before the stream was open is read once now.
            self.refresh(self.board.unfinished)
            if self.board.all_finished():
                return
            for event in events:
                change = self.board.apply_event(event, target)
                if change is None:
                    continue
                self.view.update(self.board, change)
                if change.kind == "end" or self.board.tracked[change.batch_id].finished:
                    self._final_read(change.batch_id)
                if self.board.all_finished():
                    return

    def _final_read(self, batch_id: str) -> None:
        with contextlib.suppress(ApiError):  # the stream's own final state stands
            self.refresh([batch_id])

    def _settle_rollbacks(self) -> None:
        """A batch that ended by a rollback is read again until its rollback shows the end too
        (a few seconds at most): the batch's end and its rollback's last count reach the read
        model separately, so the last answer could show the rollback short of its end."""
        for _ in range(FINAL_ROLLBACK_READS):
            behind = [
                t.batch_id
                for t in self.board.tracked.values()
                if t.rolling_back is not None and t.rolling_back.get("status") == "rolling_back"
            ]
            if not behind:
                return
            self.sleep(0.5)
            with contextlib.suppress(ApiError):
                self.refresh(behind)
