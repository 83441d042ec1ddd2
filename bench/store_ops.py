"""What single store operations cost, for the access patterns Batchyard uses: `_id`-keyed
reads and updates as a collection grows; a `$set` of a few jobs in a job bucket document
as the bucket grows; a 100-view bucket written and read with its views as nested documents
against one binary field, plain or compressed (`servicekit.blobs`); the scheduler's insert of
a flush's 200 job state changes, the same three ways; the listings' queries (the newest 50 of
a tenant's batches, the views of a 200-batch page by `_id: {$in}`, an update guarded by a field
besides `_id`, a batch's range of ids) as the batches grow; a status filter over batch views
(the ids of the open ones, of the failed ones). Runs in a throwaway database of the
store at `--url` (default: the dev stack's) and drops it; about a minute.

    python bench/store_ops.py [--url mongodb://127.0.0.1:27017]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson.binary import Binary
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from servicekit.blobs import pack_document
from servicekit.jobviews import stored_views

ROUNDS = 30


async def timed(op: Callable[[int], Awaitable[Any]], rounds: int = ROUNDS) -> float:
    """Median milliseconds of `rounds` sequential calls."""
    took = []
    for i in range(rounds):
        began = time.perf_counter()
        await op(i)
        took.append(time.perf_counter() - began)
    return statistics.median(took) * 1000


def job_view(i: int = 0) -> dict[str, Any]:
    """A completed job's view, as packed (`servicekit.jobviews`); `i` varies its times, its
    duration and its executor as a run's views vary (what compression sees)."""
    started = datetime.now(UTC) + timedelta(milliseconds=37 * i)
    took = (i * 7919) % 5000 / 1000
    return {
        "status": "completed",
        "attempt": 1,
        "executor": f"executor-{i % 2 + 1}-{(i * 2654435761) % 65536:04x}",
        "started_at": started,
        "finished_at": started + timedelta(milliseconds=took),
        "duration_ms": took,
        "output": {"slept_s": 0.0, "attempt": 1},
        "failures": 0,
        "version": 2 + i % 3,
    }


async def by_id(coll: AsyncCollection[dict[str, Any]], size: int) -> tuple[float, float]:
    await coll.insert_many([{"_id": f"d{i}", "x": i, "pad": "p" * 200} for i in range(size)])
    find = await timed(lambda i: coll.find_one({"_id": f"d{i * 7 % size}"}))
    update = await timed(lambda i: coll.update_one({"_id": f"d{i * 7 % size}"}, {"$set": {"y": i}}))
    return find, update


async def bucket(coll: AsyncCollection[dict[str, Any]], size: int) -> tuple[float, float]:
    await coll.insert_one({"_id": "b:0", "jobs": {f"j{i}": job_view() for i in range(size)}})

    def set_eight(i: int) -> Awaitable[Any]:
        sets = {f"jobs.j{(i * 8 + m) % size}.status": "running" for m in range(8)}
        return coll.update_one({"_id": "b:0"}, {"$set": sets})

    update = await timed(set_eight)
    find = await timed(lambda i: coll.find_one({"_id": "b:0"}))
    return find, update


async def listing(coll: AsyncCollection[dict[str, Any]], size: int) -> tuple[float, ...]:
    """(newest 50, views of a page, guarded update, a batch's id range) milliseconds over
    `size` registry-like documents (about 700 bytes, time-ordered ids, three of four of one
    tenant), five calls each: an unpatched local store reads and parses the whole collection
    for every one."""
    config = {"max_attempts": 3, "timeout_s": 60, "params": {"note": "n" * 200}}
    await coll.insert_many(
        [
            {
                "_id": f"b_{1_700_000_000_000 + i:012x}{i * 2654435761 % 2**40:010x}",
                "tenant": "t" if i % 4 else "u",
                "phase": "submitted",
                "job_type": "demo.sleep",
                "name": f"batch {i}",
                "config": config,
            }
            for i in range(size)
        ]
    )
    ids = [d["_id"] async for d in coll.find({}, {"_id": 1})]

    async def newest(i: int) -> None:
        [d async for d in coll.find({"tenant": "t"}).sort("_id", -1).limit(50)]

    async def page(i: int) -> None:
        [d async for d in coll.find({"_id": {"$in": ids[i * 7 % size :][:200]}})]

    async def guarded(i: int) -> None:
        # a recent batch, as the API's guarded updates mostly touch: stored last, so a store
        # that scans for it reads everything before it first
        recent = ids[size - 1 - i * 13 % 100]
        await coll.update_one({"_id": recent, "phase": "submitted"}, {"$set": {"y": i}})

    async def batch_range(i: int) -> None:
        # a batch's backups or webhook deliveries: `<batch id>.` to `<batch id>/`
        recent = ids[size - 1 - i * 13 % 100]
        [d async for d in coll.find({"_id": {"$gt": f"{recent}.", "$lt": f"{recent}/"}})]

    return tuple([await timed(op, 5) for op in (newest, page, guarded, batch_range)])


def view_like(i: int) -> dict[str, Any]:
    """A batch view as the reporter writes it (about 1 KB): one in 50 running, one in ten
    failed, the rest completed; three of four of one tenant."""
    at = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=i)
    status = "running" if i % 50 == 0 else "failed" if i % 10 == 1 else "completed"
    return {
        "_id": f"b_{1_700_000_000_000 + i:012x}{i * 2654435761 % 2**40:010x}",
        "tenant": "t" if i % 4 else "u",
        "status": status,
        "name": f"nightly import {i}",
        "description": "",
        "job_type": "demo.sleep",
        "owner": "admin",
        "priority": "medium",
        "priority_level": 5,
        "tags": ["nightly", f"team-{i % 7}"],
        "config": {"max_concurrent_jobs": 10, "max_attempts": 3, "timeout_s": 60},
        "counts": {
            k: (i * 31 + n) % 1000
            for n, k in enumerate(("total", "pending", "running", "completed", "failed"))
        },
        "created_at": at,
        "started_at": at,
        "finished_at": None if status == "running" else at + timedelta(seconds=30),
        "updated_at": at + timedelta(seconds=30),
        "average_job_ms": 12.5,
        "running_done": 0.0,
        "inactive_s": 0.0,
        "job_bucket_size": 500,
        "seq": i % 40,
        "waiting_for": [],
        "last_event": {"type": "BatchCompleted", "at": at},
    }


async def status_filter(coll: AsyncCollection[dict[str, Any]], size: int) -> tuple[float, float]:
    """(the tenant's open batches, its failed ones) milliseconds over `size` batch views,
    five calls each: the ids a status filter of the batch list reads first."""
    await coll.insert_many([view_like(i) for i in range(size)])
    open_ = {"tenant": "t", "status": {"$in": ["queued", "running", "paused", "retrying"]}}
    failed = {"tenant": "t", "status": "failed"}
    found: dict[str, int] = {}

    async def ids(query: dict[str, Any]) -> None:
        found[str(query["status"])] = len([d async for d in coll.find(query, {"_id": 1})])

    took = (await timed(lambda i: ids(open_), 5), await timed(lambda i: ids(failed), 5))
    expected = {
        str(open_["status"]): sum(1 for i in range(size) if i % 4 and i % 50 == 0),
        "failed": sum(1 for i in range(size) if i % 4 and i % 10 == 1),
    }
    assert found == expected, (found, expected)  # the store's answer, not only its speed
    return took


FORMS = ("nested", "bson", "zlib")  # nested documents; one binary: BSON, compressed BSON


def one_value(form: str, doc: dict[str, Any]) -> Any:
    """`doc` as the store is given it in `form`."""
    if form == "nested":
        return doc
    if form == "bson":
        return Binary(bson.encode(doc))
    return pack_document(doc)  # as the services write them


def bucket_fields(form: str, views: dict[str, Any]) -> dict[str, Any]:
    """The fields a `$set` writes `views` with."""
    if form == "nested":
        return {f"jobs.{k}": v for k, v in views.items()}
    return {"views": one_value(form, views)}


async def view_form(coll: AsyncCollection[dict[str, Any]], form: str) -> tuple[float, ...]:
    """(create, write, read) milliseconds of a 100-view bucket as the reporter writes it:
    created with 60 views, then written with the other 40 (nested: a `$set` of the 40; one
    binary: all 100 again), then read whole (the binary decoded); and the bytes of a 100-view
    bucket's value."""
    views = {f"j{i}": job_view(i) for i in range(100)}
    first, rest = dict(list(views.items())[:60]), dict(list(views.items())[60:])
    second = rest if form == "nested" else views

    async def write(i: int, written: dict[str, Any]) -> None:
        sets = {"batch_id": "b", "tenant": "t", "bucket": i, **bucket_fields(form, written)}
        await coll.update_one({"_id": f"b:{i}"}, {"$set": sets}, upsert=True)

    async def read(i: int) -> None:
        stored_views(await coll.find_one({"_id": f"b:{i}"}))

    create = await timed(lambda i: write(i, first))
    grow = await timed(lambda i: write(i, second))
    size = len(bson.encode({"v": one_value(form, views)}))
    return create, grow, await timed(read), size


async def changes_form(coll: AsyncCollection[dict[str, Any]], form: str) -> float:
    """Milliseconds of the scheduler's insert of one flush's job state changes (200 jobs
    started, as `MongoSchedulerStore.write_jobs` writes them)."""
    changes = {str(i): {"status": "running", "attempt": 1} for i in range(200)}
    value = one_value(form, changes)
    return await timed(
        lambda i: coll.insert_one(
            {"_id": f"b:0:{i}", "batch_id": "b", "order": [0, i], "changes": value}
        )
    )


async def series(
    title: str,
    sizes: tuple[int, ...],
    measure: Callable[[int], Awaitable[tuple[float, float]]],
    label: Callable[[int], str],
    names: tuple[str, str],
) -> None:
    """Prints (find, update) milliseconds for each size, the update also as a multiple of the
    first size's. `names`: what the update is called, and what the multiple is of."""
    print(title)
    base = None
    for size in sizes:
        find, update = await measure(size)
        base = base or update
        print(
            f"  {label(size)}: find_one {find:7.2f} ms   {names[0]} {update:7.2f} ms"
            f"   ({update / base:5.1f}x {names[1]})"
        )


async def run(url: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    name = f"storeops_{uuid.uuid4().hex[:8]}"
    db = client[name]
    try:
        await series(
            "_id-keyed operations on a collection of small documents",
            (10, 1_000, 5_000),
            lambda size: by_id(db[f"flat{size}"], size),
            lambda size: f"{size:6d} documents",
            ("update_one", "the update on 10"),
        )
        await series(
            "a $set of 8 jobs in one job bucket document (each in its own collection)",
            (10, 100, 1_000),
            lambda size: bucket(db[f"bucket{size}"], size),
            lambda size: f"bucket of {size:5d} jobs",
            ("$set", "the bucket of 10"),
        )
        print("the listings' queries on registry-like documents (each in its own collection)")
        for size in (1_000, 5_000):
            newest, page, guarded, ranged = await listing(db[f"registry{size}"], size)
            print(
                f"  {size:5d} batches: newest 50 of a tenant {newest:7.2f} ms"
                f"   200 by _id $in {page:7.2f} ms   update by _id and phase {guarded:7.2f} ms"
                f"   a batch's _id range {ranged:7.2f} ms"
            )
        print("a status filter over batch views (each in its own collection): the ids of")
        for size in (1_000, 5_000):
            opened, failed = await status_filter(db[f"views{size}"], size)
            print(
                f"  {size:5d} batches: the open ones {opened:7.2f} ms"
                f"   the failed ones {failed:7.2f} ms"
            )
        print("a 100-view job bucket: created with 60 views, written with 40 more, read whole")
        for form in FORMS:
            create, write, read, size = await view_form(db[f"form_{form}"], form)
            print(
                f"  {form:6s}: create {create:6.2f} ms   write {write:6.2f} ms"
                f"   read {read:6.2f} ms   ({size:,} bytes)"
            )
        print("the scheduler's insert of a flush's job state changes, 200 jobs")
        for form in FORMS:
            print(f"  {form:6s}: insert {await changes_form(db[f'changes_{form}'], form):6.2f} ms")
    finally:
        await client.drop_database(name)
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="mongodb://127.0.0.1:27017")
    args = parser.parse_args()
    asyncio.run(run(args.url))


if __name__ == "__main__":
    main()
