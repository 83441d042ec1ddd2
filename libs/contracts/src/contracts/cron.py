"""When a schedule fires: cron expressions in a timezone, and what to do about runs missed
while no scheduler was running. Pure: the clock is an argument.

A run is named by its scheduled time (`run_id` = schedule id + that time in UTC), so firing
the same run again (after a crash between firing and recording it) names the same run, and
whoever creates its batch can recognise the repeat.

Missed runs: a run is *on time* when it is due less than `GRACE_S` ago (a tick, a failover
to the standby). Older due runs were missed (no scheduler ran); `catch_up` decides: `none`
fires the on-time runs only, `latest` fires the most recent due run, `all` fires every due
run (at most `MAX_CATCH_UP`, oldest first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from croniter import croniter

CatchUp = Literal["none", "latest", "all"]
GRACE_S = 60.0
MAX_CATCH_UP = 100


def next_after(cron: str, timezone: str, after: datetime) -> datetime:
    """The first time strictly after `after` that `cron` names in `timezone`, in UTC."""
    local = after.astimezone(ZoneInfo(timezone))
    nxt: datetime = croniter(cron, local).get_next(datetime)
    return nxt.astimezone(UTC)


def once_cron(at: datetime, timezone: str) -> str:
    """A cron expression (with seconds) that names `at` in `timezone`, and then the same
    moment each year: a one-run schedule is disabled after its run."""
    local = at.astimezone(ZoneInfo(timezone))
    return f"{local.minute} {local.hour} {local.day} {local.month} * {local.second}"


def next_times(cron: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    at = after
    for _ in range(count):
        at = next_after(cron, timezone, at)
        out.append(at)
    return out


def run_id(schedule_id: str, run_at: datetime) -> str:
    return f"{schedule_id}@{run_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True)
class Due:
    """What to fire now, and when the schedule is next due."""

    fire: list[tuple[datetime, bool]]  # (scheduled time, missed)
    skipped: int
    next_run_at: datetime


def due_runs(
    cron: str, timezone: str, next_run_at: datetime, now: datetime, catch_up: CatchUp
) -> Due | None:
    """None when nothing is due yet; else the runs to fire by the catch-up policy."""
    if next_run_at > now:
        return None
    times = [next_run_at]
    while len(times) <= 10 * MAX_CATCH_UP:
        following = next_after(cron, timezone, times[-1])
        if following > now:
            break
        times.append(following)
    upcoming = next_after(cron, timezone, max(times[-1], now))
    on_time = [t for t in times if (now - t).total_seconds() < GRACE_S]
    missed = [t for t in times if t not in on_time]
    if catch_up == "all":
        chosen = [(t, t in missed) for t in times[-MAX_CATCH_UP:]]
    elif catch_up == "latest":
        chosen = [(times[-1], times[-1] in missed)]
    else:
        chosen = [(t, False) for t in on_time]
    return Due(fire=chosen, skipped=len(times) - len(chosen), next_run_at=upcoming)


def valid_cron(cron: str) -> bool:
    return bool(croniter.is_valid(cron))
