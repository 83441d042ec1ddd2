"""Progress arithmetic shown to people: percent, throughput, elapsed time and ETA."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, get_args

# What a rollback shown with its batch can be (`RollbackPublic.status`).
RollbackStatus = Literal["rolling_back", "rolled_back", "rollback_failed"]


def progress_of(
    counts: Mapping[str, Any],
    times: Mapping[str, Any],
    now: datetime,
    status: str | None = None,
) -> dict[str, Any]:
    """Counts, percent, elapsed time, the time the batch could move in it (`active_s`: the
    elapsed time less its pauses and the rest between a finish and a retry, `inactive_s`
    and the pause under way since `inactive_since`), throughput over that time and the ETA
    at the pace it moved: the jobs ended and what its running jobs said they have done of
    themselves (`running_done`, in jobs), so that a batch of long jobs has an ETA before
    the first one ends. The ETA goes at its recent pace (`pace_per_s`: over the last 30 to
    60 s of active time, from the scheduler's `window_*` mark), so that a batch whose pace
    changed (its concurrency raised, another batch finished, executors added or lost) says
    so within a minute; at the whole run's pace before the first window, or when nothing
    moved in it. A paused
    batch has no ETA (it moves only once resumed). The mean run time of its jobs is the
    scheduler's (`average_job_ms`), passed through.

    `times`: the scheduler's word on them, as its snapshots carry it (a `BatchSnapshot`'s
    fields, or the batch view made of them): `started_at`, `finished_at`, `inactive_s`,
    `inactive_since`, `running_done`, `average_job_ms`, `window_active_s`, `window_done`,
    `skipped_from`. Rates count only the jobs that ran: not those cancelled, nor those a
    stop skipped."""
    started_at: datetime | None = times.get("started_at")
    finished_at: datetime | None = times.get("finished_at")
    inactive_since: datetime | None = times.get("inactive_since")
    inactive_s = float(times.get("inactive_s") or 0.0)
    running_done = float(times.get("running_done") or 0.0)
    total = int(counts.get("total", 0))
    done = sum(int(counts.get(k, 0)) for k in ("completed", "failed", "skipped", "cancelled"))
    # Ended without running: cancelled, or skipped by a stop. They count as done, but not in
    # a rate: a batch cancelled after 100 jobs in 10 s ran 10 a second, not 1,000.
    never_ran = int(counts.get("cancelled", 0)) + _stopped_short(counts, times, total)
    out: dict[str, Any] = {
        k: int(counts.get(k, 0))
        for k in (
            "pending",
            "dispatched",
            "running",
            "completed",
            "failed",
            "retrying",
            "skipped",
            "cancelled",
            "awaiting_decision",
        )
    }
    out["total"] = total
    out["average_job_ms"] = times.get("average_job_ms")
    out["percent"] = round(100.0 * done / total, 2) if total else 0.0
    if started_at is not None:
        end = finished_at or now
        elapsed = max((end - started_at).total_seconds(), 0.0)
        out["elapsed_s"] = round(elapsed, 3)
        resting = inactive_s
        if inactive_since is not None and finished_at is None:
            resting += max((now - inactive_since).total_seconds(), 0.0)
        active = max(elapsed - resting, 0.0)
        out["active_s"] = round(active, 3)
        if active > 0:
            out["throughput_per_s"] = round((done - never_ran) / active, 2)
            moved = done + min(max(running_done, 0.0), max(total - done, 0))
            pace = _recent_pace(times, active, moved) if finished_at is None else None
            out["pace_per_s"] = pace  # said when None: a live view merges its frames
            if pace is not None:
                out["pace_per_s"] = round(pace, 2)
                out["eta_s"] = round((total - moved) / pace, 1)
            elif finished_at is None and moved > never_ran:
                out["eta_s"] = round((total - moved) * active / (moved - never_ran), 1)
        if finished_at is not None:
            out["eta_s"] = 0.0
    if status == "paused":
        out["eta_s"] = None  # said, not left out: a live view merging frames drops its ETA
    return out


def _stopped_short(counts: Mapping[str, Any], times: Mapping[str, Any], total: int) -> int:
    """Of the skipped jobs, those a stop skipped (`stop_on_error`: every job from
    `skipped_from` on never ran); the rest were skipped by their job type, having run."""
    start = times.get("skipped_from")
    if start is None:
        return 0
    return min(max(total - int(start), 0), int(counts.get("skipped", 0)))


def _recent_pace(times: Mapping[str, Any], active_s: float, moved: float) -> float | None:
    """Jobs a second since the scheduler's window mark (None without one, or when nothing
    moved since: the whole run's pace says more than "never")."""
    since_s, since_done = times.get("window_active_s"), times.get("window_done")
    if since_s is None or since_done is None:
        return None
    seconds, jobs = active_s - float(since_s), moved - float(since_done)
    return jobs / seconds if seconds > 0 and jobs > 0 else None


ROLLBACK_STATUSES = frozenset({None, *get_args(RollbackStatus)})  # None: not ended yet


def latest_rollback(recorded: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """The batch's latest rollback as shown: the reporter's records (`rollbacks.<id>`; dry
    runs are checks, kept apart), the one started last, with its percent, throughput and
    ETA; None if none was started. One the rollback service has not planned yet has no
    `total`: `planning`. Records that are not a rollback's are skipped: a check kept in the
    batch view by the reporter of 2026-12-06 before checks got their own documents (marked
    `dry_run`, `status` `clear` or `refused`), or anything else a reader cannot show, rather
    than failing every read and listing of the batch."""
    started = [
        (record["started_at"], rollback_id, record)
        for rollback_id, record in (recorded or {}).items()
        if isinstance(record, dict)
        and isinstance(record.get("started_at"), datetime)
        and not record.get("dry_run")
        and record.get("status", "rolling_back") in ROLLBACK_STATUSES
    ]
    if not started:
        return None
    started_at, rollback_id, record = max(started, key=lambda found: (found[0], found[1]))
    total, done = int(record.get("total") or 0), int(record.get("done") or 0)
    finished_at = record.get("finished_at")
    status = record.get("status") or "rolling_back"
    out: dict[str, Any] = {
        "rollback_id": rollback_id,
        "status": status,
        "planning": status == "rolling_back" and record.get("total") is None,
        "done": done,
        "total": total,
        "percent": round(100.0 * done / total, 2) if total else 0.0,
        "started_at": started_at,
        "finished_at": finished_at,
        "reason": record.get("reason"),
    }
    elapsed = max(((finished_at or now) - started_at).total_seconds(), 0.0)
    if elapsed > 0 and done:
        out["throughput_per_s"] = round(done / elapsed, 2)
        if finished_at is None:
            out["eta_s"] = round((total - done) * elapsed / done, 1)
    return out
