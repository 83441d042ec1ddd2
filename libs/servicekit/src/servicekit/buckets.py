"""Per-job views kept in bucket documents: one document per run of consecutive jobs of a batch.

Why: the store is written at job rate. A document per job costs one write per job, and
FerretDB v1 (the local store) scans on any filter other than `_id`. Buckets turn thousands of
job writes into a few `_id`-keyed updates per flush, on MongoDB as well (the bucket pattern).
Every update rewrites the whole document, so a bucket must stay small: 100 jobs
(docs/performance.md, "Smaller job view buckets").

The size is a property of each batch, recorded in its batch view (`job_bucket_size`) when the
reporter creates the view. Views of batches created before it was recorded have none and use
buckets of 1,000 jobs, so their stored documents keep being read as they were written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LEGACY_SIZE = 1000
JOB_VIEW_SIZE = 100
SIZE_FIELD = "job_bucket_size"


@dataclass(frozen=True)
class Buckets:
    """The bucket layout of one batch's jobs."""

    size: int = LEGACY_SIZE

    def of(self, index: int) -> tuple[int, str]:
        """(bucket number, key of the job inside the bucket) of a job index."""
        return index // self.size, f"j{index % self.size}"

    def index_of(self, bucket: int, key: str) -> int:
        return bucket * self.size + int(key[1:])

    def count(self, total: int) -> int:
        """How many buckets `total` jobs take."""
        return (total + self.size - 1) // self.size

    def indexes(self, bucket: int, total: int) -> range:
        """The job indexes of a bucket, among `total` jobs."""
        return range(bucket * self.size, min(total, (bucket + 1) * self.size))


def view_buckets(batch_view: Mapping[str, Any] | None) -> Buckets:
    """The layout of a batch's job views, from its batch view. A batch with no view yet has
    no job views either; the reporter gives it today's layout when it creates the view."""
    if batch_view is None:
        return Buckets(JOB_VIEW_SIZE)
    return Buckets(int(batch_view.get(SIZE_FIELD) or LEGACY_SIZE))


def bucket_id(batch_id: str, bucket: int) -> str:
    return f"{batch_id}:{bucket}"
