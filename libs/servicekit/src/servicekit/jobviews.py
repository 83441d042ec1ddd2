"""How a job view is stored: without what the rest of it, or its place, already says.

Why: every bucket update makes the local store (FerretDB v1) rewrite the whole bucket
document, at a cost that grows with its bytes, and the reporter writes a bucket once or twice
per 100 jobs. A completed job's full view is ~500 BSON bytes; most of it repeats itself (one
attempt's record restates the top level, `metrics` are the numbers of `output`, empty fields,
the job id and index that the bucket key gives). Stored packed it is ~200 bytes, and an
insert plus an update of a 100-view bucket costs 13.6 ms against 30.7 (docs/performance.md,
"Packed job views").

`pack` leaves out a field only when `unpack` gives it back equal, checked on the view being
written, so a view that does not fit the usual shape (several attempts, metrics the job
reported itself) is stored with those fields as they are: never lossy, at worst unpacked.
Views stored before packing carry `job_id`; `unpack` returns them as they were.

A bucket document holds its packed views in one binary field, `views` (`encode_views`:
compressed BSON, `servicekit.blobs`), so the store handles one value however many views the
bucket holds: on FerretDB v1 a write of a 100-view bucket takes 7.8–9.7 ms as nested
documents and 0.8–1.1 ms as one compressed binary, a read 9.1–9.7 ms against 1.0–1.2, in
2.6 KB instead of 20.7 (`bench/store_ops.py`; docs/performance.md, "Job views and job state
changes in one binary field"). The store cannot query inside it; nothing does (every
reader takes whole buckets by `_id`). Buckets written before kept their views as nested
documents under `jobs`; `stored_views` reads both, and the reporter moves a bucket's views
into `views` when it next writes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson.binary import Binary

from contracts.events.execution import output_metrics
from contracts.topics import job_id_for
from servicekit.blobs import pack_document, unpack_document
from servicekit.buckets import Buckets

# Top-level fields every full view has, None when unset (the reporter's projection sets them
# so); stored only when set.
NULLABLE = (
    "status",
    "executor",
    "started_at",
    "finished_at",
    "duration_ms",
    "output",
    "metrics",
    "error_class",
    "error_message",
    "retryable",
    "retry_at",
    "skip_reason",
    "warnings",
    "resources",
)
_FROM_PLACE = ("job_id", "index")
_RAN = frozenset({"running", "completed", "failed", "cancelled"})
VIEWS_FIELD = "views"  # the bucket's packed views, one binary (`servicekit.blobs`)
LEGACY_FIELD = "jobs"  # the same as nested documents, in buckets written before
# what a reader of whole buckets asks the store for
BUCKET_PROJECTION = {VIEWS_FIELD: 1, LEGACY_FIELD: 1}


def implied_attempts(view: Mapping[str, Any]) -> dict[str, Any] | None:
    """The attempt records of a view whose only attempt is the one its top level describes;
    None when the top level describes no executor's run (retrying, cancelled before a run)."""
    status, executor = view.get("status"), view.get("executor")
    if status not in _RAN or executor is None or view.get("attempt") is None:
        return None
    record: dict[str, Any] = {
        "attempt": view["attempt"],
        "status": status,
        "executor": executor,
        "started_at": view.get("started_at"),
    }
    if status != "running":
        record["finished_at"] = view.get("finished_at")
        record["error"] = (
            None
            if status == "completed"
            else {
                "class": view.get("error_class"),
                "message": view.get("error_message"),
                "retryable": view.get("retryable"),
            }
        )
    return {str(view["attempt"]): record}


def pack(view: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of a full job view (as the reporter folds it)."""
    stored = {k: v for k, v in view.items() if k not in _FROM_PLACE}
    completed = stored.get("status") == "completed"
    if (
        completed
        and "metrics" in stored
        and stored["metrics"] == output_metrics(stored.get("output"))
    ):
        del stored["metrics"]
    for name in NULLABLE:
        # a completed view keeps a None `metrics`: unpacked without one it would get derived
        if name in stored and stored[name] is None and not (completed and name == "metrics"):
            del stored[name]
    if stored.get("errors") == {}:
        del stored["errors"]
    if "attempts" in stored and stored["attempts"] == implied_attempts(view):
        del stored["attempts"]
    return stored


def unpack(stored: Mapping[str, Any], batch_id: str, index: int) -> dict[str, Any]:
    """The full job view of job `index` of `batch_id` from its stored form."""
    if "job_id" in stored:  # stored whole, before packing
        return dict(stored)
    view: dict[str, Any] = {"job_id": job_id_for(batch_id, index), "index": index, **stored}
    if "metrics" not in view and view.get("status") == "completed":
        view["metrics"] = output_metrics(view.get("output"))
    for name in NULLABLE:
        view.setdefault(name, None)
    view.setdefault("errors", {})
    if "attempts" not in view:
        view["attempts"] = implied_attempts(view) or {}
    return view


def encode_views(stored: Mapping[str, Mapping[str, Any]]) -> Binary:
    """A bucket's packed views (`j<k>` → `pack(view)`) as the value of its `views` field;
    in key order, so the same views give the same bytes."""
    ordered = {key: stored[key] for key in sorted(stored, key=lambda k: int(k[1:]))}
    return pack_document(ordered)


def stored_views(doc: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The packed views of a stored bucket document (`j<k>` → stored view), from its
    `views` binary and any left as nested documents by an older reporter (the binary wins,
    being written later)."""
    if doc is None:
        return {}
    views: dict[str, dict[str, Any]] = dict(doc.get(LEGACY_FIELD) or {})
    packed = doc.get(VIEWS_FIELD)
    if packed is not None:
        views |= unpack_document(packed)
    return views


def unpack_bucket(
    doc: Mapping[str, Any] | None, batch_id: str, layout: Buckets, bucket: int
) -> dict[str, dict[str, Any]]:
    """The full views of a stored bucket document (`j<k>` → view); empty for None."""
    return {
        key: unpack(stored, batch_id, layout.index_of(bucket, key))
        for key, stored in stored_views(doc).items()
    }
