"""The file store on the real store: files of several chunks read back byte for byte, in
order even when chunks come back out of natural order; a missing chunk is `FileCorrupt`; a
batch's files (and only its files) are deleted together. (How read times grow with the number
of files stored, per layout: `bench/file_store_layouts.py`.)"""

from __future__ import annotations

import io
import os

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.files import CHUNK_BYTES, FileCorrupt, FileStore, chunks_collection, new_file_id

pytestmark = pytest.mark.integration


async def put(files: FileStore, batch_id: str, data: bytes, name: str = "f.bin") -> str:
    file_id = new_file_id(batch_id)
    stored = await files.put(
        file_id, io.BytesIO(data), tenant="t", batch_id=batch_id, filename=name, content_type=None
    )
    assert (stored.size, stored.chunks, stored.complete) == (
        len(data),
        -(-len(data) // CHUNK_BYTES),
        True,
    )
    return file_id


async def read_all(files: FileStore, file_id: str) -> bytes:
    stored = await files.get(file_id)
    assert stored is not None
    return b"".join([piece async for piece in files.read(stored)])


async def test_files_read_back_exactly_and_in_order(db: AsyncDatabase[dict[str, object]]) -> None:
    files = FileStore(db)
    data = os.urandom(CHUNK_BYTES * 5 + 17)  # 6 chunks, more than one insert's worth
    file_id = await put(files, "b_one", data)
    assert await read_all(files, file_id) == data
    assert await read_all(files, await put(files, "b_one", b"")) == b""

    # chunks that come back out of natural order are read by `_id` instead
    chunks = db[chunks_collection(file_id)]
    first = await chunks.find_one_and_delete({"_id": 0})
    assert first is not None
    await chunks.insert_one(first)  # now last in natural order
    assert await read_all(files, file_id) == data

    await chunks.delete_one({"_id": 3})
    with pytest.raises(FileCorrupt, match="chunk 3"):
        await read_all(files, file_id)


async def test_a_batch_deletes_its_own_files_only(db: AsyncDatabase[dict[str, object]]) -> None:
    files = FileStore(db)
    mine = [await put(files, "b_mine", os.urandom(1000)) for _ in range(3)]
    other = await put(files, "b_mine2", b"keep me")
    assert sorted(await files.batch_file_ids("b_mine")) == sorted(mine)
    assert await files.delete_batch("b_mine") == 3
    assert await files.batch_file_ids("b_mine") == []
    assert [n for n in await db.list_collection_names() if "b_mine." in n] == []
    assert await read_all(files, other) == b"keep me"
