"""Progress shown to people: percent, throughput, elapsed and ETA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batch_api.domain.progress import progress_of

pytestmark = pytest.mark.unit
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_running_batch() -> None:
    counts = {"total": 100, "completed": 30, "failed": 10, "running": 5, "pending": 55}
    p = progress_of(counts, T0, None, T0 + timedelta(seconds=20))
    assert p["percent"] == 40.0
    assert p["throughput_per_s"] == 2.0
    assert p["elapsed_s"] == 20.0
    assert p["eta_s"] == 30.0


def test_finished_batch_has_no_eta_left() -> None:
    p = progress_of({"total": 10, "completed": 10}, T0, T0 + timedelta(seconds=5), T0)
    assert p["percent"] == 100.0
    assert p["eta_s"] == 0.0
    assert p["elapsed_s"] == 5.0


def test_not_started_and_empty() -> None:
    p = progress_of({"total": 0}, None, None, T0)
    assert p["percent"] == 0.0
    assert "eta_s" not in p
