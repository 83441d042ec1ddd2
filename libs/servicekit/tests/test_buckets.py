"""Job view bucket layouts: where a job's view lives for a batch's recorded bucket size, and
the size a batch view without one (stored before sizes were recorded) stands for."""

from __future__ import annotations

import pytest

from servicekit.buckets import JOB_VIEW_SIZE, LEGACY_SIZE, SIZE_FIELD, Buckets, view_buckets

pytestmark = pytest.mark.unit


def test_a_job_index_maps_to_a_bucket_and_back() -> None:
    layout = Buckets(100)
    assert layout.of(0) == (0, "j0")
    assert layout.of(150) == (1, "j50")
    assert layout.index_of(1, "j50") == 150
    assert all(layout.index_of(*layout.of(i)) == i for i in range(1000))
    assert layout.count(0) == 0
    assert layout.count(100) == 1
    assert layout.count(101) == 2
    assert list(layout.indexes(1, 150)) == list(range(100, 150))
    assert list(layout.indexes(0, 150)) == list(range(100))


def test_the_batch_view_decides_the_layout() -> None:
    assert view_buckets({SIZE_FIELD: 100}).size == 100
    assert view_buckets({"status": "completed"}).size == LEGACY_SIZE == 1000
    assert view_buckets(None).size == JOB_VIEW_SIZE == 100
    assert view_buckets({SIZE_FIELD: 100}).of(1234) == (12, "j34")
    assert view_buckets({}).of(1234) == (1, "j234")
