"""How the time to read one stored file grows with the number of files stored, for three
layouts of file bytes in the store; the numbers behind `servicekit.files`' layout.

    python bench/file_store_layouts.py [--files 300] [--kib 100]

Needs the store (`make up`, or MONGODB_URL). Writes `--files` files of `--kib` KiB in each
layout into a scratch database (dropped afterwards) and prints the mean time to read the
first and the last file stored:

- gridfs: pymongo's GridFS (`fs.files` + `fs.chunks`, chunks found by `files_id`);
- shared: 255 KiB chunks in one collection under `_id` = `<file>:<n>`;
- per-file: a collection per file, chunks under `_id` = n (what Batchyard uses).

On MongoDB every layout reads in about constant time; on FerretDB v1 (SQLite) every filter
scans its collection, so only the per-file layout does."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse

from bson import Binary
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

MONGODB_URL = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/batchyard")
CHUNK = 255 * 1024
Db = AsyncDatabase[dict[str, object]]


async def timed(read: Callable[[], Awaitable[object]], repeat: int = 3) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        await read()
    return (time.perf_counter() - started) / repeat * 1000


async def gridfs(db: Db, n: int, data: bytes) -> tuple[float, float]:
    bucket = AsyncGridFSBucket(db)
    ids = [await bucket.upload_from_stream(f"f{i}", data) for i in range(n)]

    async def read(i: int) -> bytes:
        stream = await bucket.open_download_stream(ids[i])
        return await stream.read()

    return await timed(lambda: read(0)), await timed(lambda: read(n - 1))


async def shared(db: Db, n: int, data: bytes) -> tuple[float, float]:
    col = db["file_chunks"]
    pieces = [data[o : o + CHUNK] for o in range(0, len(data), CHUNK)]
    for i in range(n):
        await col.insert_many(
            [{"_id": f"f{i}:{k}", "data": Binary(p)} for k, p in enumerate(pieces)]
        )

    async def read(i: int) -> list[object]:
        return [await col.find_one({"_id": f"f{i}:{k}"}) for k in range(len(pieces))]

    return await timed(lambda: read(0)), await timed(lambda: read(n - 1))


async def per_file(db: Db, n: int, data: bytes) -> tuple[float, float]:
    pieces = [data[o : o + CHUNK] for o in range(0, len(data), CHUNK)]
    for i in range(n):
        await db[f"file_chunks.f{i}"].insert_many(
            [{"_id": k, "data": Binary(p)} for k, p in enumerate(pieces)]
        )

    async def read(i: int) -> list[object]:
        return [d async for d in db[f"file_chunks.f{i}"].find({})]

    return await timed(lambda: read(0)), await timed(lambda: read(n - 1))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--kib", type=int, default=100)
    args = parser.parse_args()
    data = os.urandom(args.kib * 1024)
    server = MONGODB_URL.rsplit("/", 1)[0] if urlparse(MONGODB_URL).path else MONGODB_URL
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(server)
    print(f"{args.files} files of {args.kib} KiB; mean read time of the first and last file")
    try:
        for name, layout in (("gridfs", gridfs), ("shared", shared), ("per-file", per_file)):
            scratch = f"bench_files_{uuid.uuid4().hex[:8]}"
            try:
                first, last = await layout(client[scratch], args.files, data)
            finally:
                await client.drop_database(scratch)
            print(f"{name:>9}: first {first:8.1f} ms   last {last:8.1f} ms")
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
