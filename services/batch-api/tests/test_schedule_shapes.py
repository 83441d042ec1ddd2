"""What a schedule must say: `cron` or a one-run `run_at`, ahead and within a year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from batch_api.schedule_schemas import ScheduleCreate, ScheduleUpdate

pytestmark = pytest.mark.unit


def create(**fields: Any) -> ScheduleCreate:
    return ScheduleCreate.model_validate({"name": "s", "template_id": "t", **fields})


def test_a_schedule_is_recurring_or_one_run_never_both_or_neither() -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    assert create(cron="0 3 * * *").run_at is None
    assert create(run_at=soon.isoformat()).cron is None
    for fields in ({}, {"cron": "0 3 * * *", "run_at": soon.isoformat()}):
        with pytest.raises(ValidationError, match="either `cron`"):
            create(**fields)
    with pytest.raises(ValidationError, match="not both"):
        ScheduleUpdate(cron="0 3 * * *", run_at=soon)


@pytest.mark.parametrize(
    ("offset", "message"),
    [(timedelta(minutes=-1), "in the future"), (timedelta(days=400), "within a year")],
)
def test_a_run_at_is_ahead_and_within_a_year(offset: timedelta, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        create(run_at=(datetime.now(UTC) + offset).isoformat())


def test_a_run_at_without_an_offset_is_utc() -> None:
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0, tzinfo=None)
    assert create(run_at=at.isoformat()).run_at == at.replace(tzinfo=UTC)
