"""Schedule times: cron in a timezone, and runs missed while no scheduler ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.cron import due_runs, next_after, next_times, once_cron, run_id, valid_cron

pytestmark = pytest.mark.unit
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_next_times_follow_the_timezone_across_a_daylight_saving_change() -> None:
    # 02:30 every day in Berlin: UTC+1 in winter, UTC+2 from 29 March 2026.
    times = next_times("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 27, tzinfo=UTC), 4)
    assert [t.isoformat() for t in times] == [
        "2026-03-27T01:30:00+00:00",
        "2026-03-28T01:30:00+00:00",
        "2026-03-29T01:00:00+00:00",  # no 02:30 on the 29th in Berlin: once, at 03:00
        "2026-03-30T00:30:00+00:00",
    ]
    assert all(t.tzinfo == UTC for t in times)


def test_every_five_minutes() -> None:
    assert next_after("*/5 * * * *", "UTC", T) == T + timedelta(minutes=5)
    assert next_after("*/5 * * * *", "UTC", T + timedelta(seconds=1)) == T + timedelta(minutes=5)
    assert run_id("s_1", T) == "s_1@2026-03-01T12:00:00Z"


def test_nothing_is_due_before_its_time() -> None:
    assert due_runs("*/5 * * * *", "UTC", T, T - timedelta(seconds=1), "none") is None


def test_a_run_due_now_fires_once_and_the_next_follows() -> None:
    due = due_runs("*/5 * * * *", "UTC", T, T + timedelta(seconds=2), "none")
    assert due is not None
    assert due.fire == [(T, False)]
    assert due.skipped == 0
    assert due.next_run_at == T + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("policy", "fired", "skipped"),
    [
        ("none", [], 4),  # all four were missed (the newest by more than the grace)
        ("latest", [(T + timedelta(minutes=15), True)], 3),
        ("all", [(T + timedelta(minutes=m), True) for m in (0, 5, 10, 15)], 0),
    ],
)
def test_runs_missed_while_down_follow_the_catch_up_policy(
    policy: str, fired: list[tuple[datetime, bool]], skipped: int
) -> None:
    now = T + timedelta(minutes=17)  # down from 12:00 to 12:17
    due = due_runs("*/5 * * * *", "UTC", T, now, policy)  # type: ignore[arg-type]
    assert due is not None
    assert due.fire == fired
    assert due.skipped == skipped
    assert due.next_run_at == T + timedelta(minutes=20)


def test_missed_runs_with_one_on_time_under_none() -> None:
    now = T + timedelta(minutes=15, seconds=20)
    due = due_runs("*/5 * * * *", "UTC", T, now, "none")
    assert due is not None
    assert due.fire == [(T + timedelta(minutes=15), False)]
    assert due.skipped == 3


def test_cron_validation() -> None:
    assert valid_cron("0 3 * * 1-5")
    assert not valid_cron("61 * * * *")
    assert not valid_cron("every day")


def test_runs_late_by_a_failover_are_all_on_time() -> None:
    now = T + timedelta(seconds=12)
    due = due_runs("* * * * * */2", "UTC", T, now, "none")
    assert due is not None
    assert [at for at, _ in due.fire] == [T + timedelta(seconds=s) for s in range(0, 13, 2)]
    assert not any(missed for _, missed in due.fire)
    assert due.skipped == 0


def test_a_once_cron_names_its_moment_in_the_timezone() -> None:
    at = datetime(2026, 12, 24, 17, 30, 15, tzinfo=UTC)
    cron = once_cron(at, "Europe/Berlin")
    assert cron == "30 18 24 12 * 15"  # 18:30:15 in Berlin
    assert next_after(cron, "Europe/Berlin", at - timedelta(days=30)) == at
