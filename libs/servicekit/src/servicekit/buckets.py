"""Per-job state kept in bucket documents: one document per 1,000 consecutive jobs of a batch.

Why: the store is written at job rate. A document per job costs one write per job, and
FerretDB v1 (the local store) stalls on multi-statement updates and scans on any filter other
than `_id`. Buckets turn thousands of job writes into a few `_id`-keyed updates per flush, on
MongoDB as well (the bucket pattern)."""

from __future__ import annotations

BUCKET_SIZE = 1000


def bucket_of(index: int) -> tuple[int, str]:
    """(bucket number, key of the job inside the bucket) of a job index."""
    return index // BUCKET_SIZE, f"j{index % BUCKET_SIZE}"


def bucket_id(batch_id: str, bucket: int) -> str:
    return f"{batch_id}:{bucket}"


def index_of(bucket: int, key: str) -> int:
    return bucket * BUCKET_SIZE + int(key[1:])
