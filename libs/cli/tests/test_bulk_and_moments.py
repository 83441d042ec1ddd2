"""Bulk bodies and exit codes, moments for --since/--until, the sparkline and schedule times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batchyard_cli.bulk import Selection, bulk_body, exit_code
from batchyard_cli.catalog_view import in_zone
from batchyard_cli.errors import InputError
from batchyard_cli.exit_codes import ExitCode
from batchyard_cli.insights_view import sparkline
from batchyard_cli.moments import parse_moment

pytestmark = pytest.mark.unit


def test_bulk_by_ids_drops_repeats_and_keeps_order() -> None:
    body = bulk_body("cancel", Selection(ids=["b_2", "b_1", "b_2"]))
    assert body == {"action": "cancel", "ids": ["b_2", "b_1"]}


def test_bulk_by_filters_splits_comma_separated_statuses() -> None:
    body = bulk_body("archive", Selection(statuses=["failed,cancelled", "completed"], tag="x"))
    assert body == {
        "action": "archive",
        "filter": {"status": ["failed", "cancelled", "completed"], "tag": "x"},
    }
    assert Selection(statuses=["failed", "cancelled"]).listing_params() == {
        "status": "failed,cancelled"
    }


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (Selection(), "say which batches"),
        (Selection(ids=["b_1"], q="nightly"), "not both"),
        (Selection(ids=[f"b_{i}" for i in range(1001)]), "at most 1000"),
    ],
)
def test_bulk_refuses_an_unclear_selection(selection: Selection, message: str) -> None:
    with pytest.raises(InputError, match=message):
        bulk_body("delete", selection)


def test_bulk_refuses_an_unknown_action() -> None:
    with pytest.raises(InputError, match="unknown bulk action"):
        bulk_body("explode", Selection(ids=["b_1"]))


def test_bulk_exit_code_is_the_worst_refusal() -> None:
    ok = {"id": "b_1", "ok": True, "status": 202}
    assert exit_code([ok]) is ExitCode.OK
    assert exit_code([ok, {"id": "b_2", "ok": False, "status": 404}]) is ExitCode.NOT_FOUND
    conflict = {"id": "b_3", "ok": False, "status": 409, "batch_status": "running"}
    assert exit_code([{"ok": False, "status": 404}, conflict]) is ExitCode.REJECTED


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_moments_are_spans_back_from_now_or_iso_times() -> None:
    assert parse_moment("90m", NOW) == "2026-11-24T10:30:00+00:00"
    assert parse_moment("7d", NOW) == "2026-11-17T12:00:00+00:00"
    assert parse_moment("2026-11-01T08:00:00+01:00", NOW) == "2026-11-01T08:00:00+01:00"
    # a time without a zone is the local time: it gets this machine's offset
    assert parse_moment("2026-11-01", NOW).startswith("2026-11-01T00:00:00")
    with pytest.raises(InputError, match="--until: 'soon'"):
        parse_moment("soon", NOW, option="--until")


def test_a_deadline_span_counts_ahead_of_now() -> None:
    assert parse_moment("4h", NOW, "--deadline", ahead=True) == "2026-11-24T16:00:00+00:00"
    assert parse_moment("2026-12-01T08:00:00+00:00", NOW, ahead=True).startswith("2026-12-01")
    with pytest.raises(InputError, match="span ahead of now"):
        parse_moment("tomorrow", NOW, "--deadline", ahead=True)


def test_sparkline_scales_to_the_peak_and_shows_idle_buckets_lowest() -> None:
    assert sparkline([0, 5, 10, None]) == "▁▅█▁"
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert len(sparkline([1.0] * 60)) == 60


def test_a_run_time_in_the_schedules_zone_follows_daylight_saving() -> None:
    assert in_zone("2026-07-01T11:30:00+00:00", "Europe/Berlin") == "Wed 2026-07-01 13:30:00 CEST"
    assert in_zone("2026-12-01T11:30:00+00:00", "Europe/Berlin") == "Tue 2026-12-01 12:30:00 CET"
