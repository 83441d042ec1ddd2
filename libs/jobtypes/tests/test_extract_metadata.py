"""`files.extract_metadata`'s failure classes and output, over a stand-in file store (the
real store is in tests/e2e/test_file_uploads.py and tests/integration/test_file_store.py)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from jobkit import PermanentError, RetryableError
from jobtypes.files.jobtype import ExtractMetadata, FileRef
from servicekit.files import FileCorrupt, StoredFile

pytestmark = pytest.mark.unit


class Ctx:
    job_id = "b.0"
    batch_id = "b"
    attempt = 1
    params: dict[str, Any] = {}
    cancel_requested = False

    def __init__(self) -> None:
        self.warnings: list[str] = []

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        return None

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class Files:
    """Holds one file as chunks; `fail` makes every call raise it."""

    def __init__(
        self,
        chunks: list[bytes],
        fail: Exception | None = None,
        filename: str = "a.txt",
        content_type: str = "text/plain",
    ) -> None:
        self.chunks = chunks
        self.fail = fail
        self.filename = filename
        self.content_type = content_type

    async def get(self, file_id: str) -> StoredFile | None:
        if self.fail is not None:
            raise self.fail
        if file_id != "b.f1":
            return None
        size = sum(map(len, self.chunks))
        return StoredFile(
            file_id, "t", "b", self.filename, self.content_type, size, len(self.chunks), True
        )

    async def read(self, stored: StoredFile) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if chunk == b"!":
                raise FileCorrupt("chunk 1 of file b.f1 is missing")
            yield chunk


def job(files: Files) -> ExtractMetadata:
    extract = ExtractMetadata()
    extract._files = files  # type: ignore[assignment]
    return extract


async def test_output_of_a_text_file_in_chunks() -> None:
    chunks = [b"hello wo", b"rld\nsecond line\n"]
    out = await job(Files(chunks)).run(FileRef(file_id="b.f1", filename="a.txt"), Ctx())
    assert out["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert (out["size_bytes"], out["lines"], out["words"], out["text_file"]) == (24, 2, 4, 1)
    assert (out["media_type"], out["encoding"], out["declared_content_type"]) == (
        "text/plain",
        "ascii",
        "text/plain",
    )


async def test_what_is_odd_about_a_file_is_a_warning_with_its_metadata() -> None:
    ctx = Ctx()
    await job(Files([b"hello\n"])).run(FileRef(file_id="b.f1"), ctx)
    assert ctx.warnings == []  # a text file, uploaded as text
    ctx = Ctx()
    pdf = Files([b"%PDF-1.7\n..."], filename="scan.png", content_type="image/png")
    out = await job(pdf).run(FileRef(file_id="b.f1"), ctx)
    assert out["media_type"] == "application/pdf"
    assert ctx.warnings == ["uploaded as image/png, but its content is application/pdf"]
    ctx = Ctx()
    empty = Files([], filename="blob", content_type="application/octet-stream")
    await job(empty).run(FileRef(file_id="b.f1"), ctx)
    assert ctx.warnings == [
        "the file is empty",
        "neither its content nor its name tells its type: called it text/plain",
    ]


async def test_a_missing_file_is_permanent_and_named() -> None:
    with pytest.raises(PermanentError, match=r"b\.f9 \(gone\.txt\)") as caught:
        await job(Files([])).run(FileRef(file_id="b.f9", filename="gone.txt"), Ctx())
    assert caught.value.error_class == "FileNotFound"


async def test_a_store_failure_is_retryable() -> None:
    with pytest.raises(RetryableError) as caught:
        await job(Files([], AutoReconnect("down"))).run(FileRef(file_id="b.f1"), Ctx())
    assert caught.value.error_class == "StoreError"


async def test_a_corrupt_file_is_permanent() -> None:
    with pytest.raises(PermanentError) as caught:
        await job(Files([b"abc", b"!"])).run(FileRef(file_id="b.f1"), Ctx())
    assert caught.value.error_class == "FileCorrupt"


async def test_without_a_store_it_fails_permanently() -> None:
    with pytest.raises(PermanentError) as caught:
        await ExtractMetadata().run(FileRef(file_id="b.f1"), Ctx())
    assert caught.value.error_class == "NoStore"
