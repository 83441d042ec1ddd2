"""The batch runtime's bookkeeping of jobs it never dispatched."""

from __future__ import annotations

import pytest

from contracts.vocabulary import BatchConfig
from scheduler.domain.model import BatchRuntime

pytestmark = pytest.mark.unit


def _runtime(total: int, **config: object) -> BatchRuntime:
    b = BatchRuntime("b1", "t", "demo.sleep", BatchConfig.model_validate(config), 5, "running")
    b.total = total
    b.add_chunk(0, 0, total)
    return b


def test_skipping_counts_a_job_cancelled_on_its_own_as_cancelled_and_unskip_reopens_all() -> None:
    b = _runtime(10)
    assert [b.claim(0.0) for _ in range(3)] == [(0, 1, 0), (1, 1, 0), (2, 1, 0)]
    b.cancelled_indexes.add(5)
    b.schedule_retry(1, 2, 1, ready_at=100.0)
    assert b.skip_waiting() == 6  # 3, 4, 6, 7, 8, 9
    counts = b.counts()
    assert (counts.skipped, counts.cancelled, counts.pending, counts.retrying) == (6, 2, 0, 0)
    assert b.unskip() == 6
    counts = b.counts()
    assert (counts.skipped, counts.cancelled, counts.pending) == (0, 1, 7)
    claimed = [b.claim(0.0) for _ in range(6)]
    assert [c[0] for c in claimed if c] == [3, 4, 6, 7, 8, 9]
    assert b.counts().cancelled == 2  # job 5 once again, as dispatching passed it
    assert b.unskip() == 0


def test_a_sequential_config_runs_one_job_at_a_time_whatever_the_concurrency_says() -> None:
    config = BatchConfig.model_validate({"execution": "sequential", "max_concurrent_jobs": 8})
    assert config.max_concurrent_jobs == 1
    assert BatchConfig.model_validate(config.model_dump()).max_concurrent_jobs == 1
    b = _runtime(3, execution="sequential")
    assert b.room(0.0) == 1
    assert b.claim(0.0) == (0, 1, 0)
    b.in_flight["b1.0"] = object()  # type: ignore[assignment]
    assert (b.room(0.0), b.claim(0.0)) == (0, None)
