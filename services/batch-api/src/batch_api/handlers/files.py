"""Uploading files into a draft batch: each file's bytes go to the store (`servicekit.files`)
and the batch gets one item per file, `{"file_id", "filename", "size", "content_type"}`, the
input of `files.extract_metadata` (any job type whose input schema accepts such items works).

One request is one chunk of the upload; a batch takes any number of them until it is
submitted. Refusals come before anything is stored (403 viewer, 404, 409 submitted, 413 a file
or the request over its cap, 422 no file or items the job type refuses); a failure while
storing or adding the items deletes the files this request stored, so a refused or failed
request leaves the batch as it was."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from batch_api.api.problems import Problem
from batch_api.domain.lifecycle import UNSUBMITTED
from batch_api.domain.principal import Principal
from batch_api.handlers.batches import BatchService, Loaded
from batch_api.schemas import FileAdded, ItemsAdded
from servicekit.files import CHUNK_BYTES, FileStore, new_file_id

log = logging.getLogger(__name__)

MAX_FILENAME = 1000


class IncomingFile(Protocol):
    """A file of a multipart request (Starlette's `UploadFile` is one)."""

    @property
    def filename(self) -> str | None: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def size(self) -> int | None: ...
    @property
    def file(self) -> BinaryIO: ...


@dataclass
class FileUploads:
    batches: BatchService
    files: FileStore
    max_file_bytes: int
    max_files: int

    async def check(self, batch_id: str, who: Principal, *, state: bool = True) -> Loaded:
        """Refusals that need no body: a viewer, an unknown batch, (with `state`) a
        submitted one."""
        if not who.may("operator"):
            raise Problem(403, "Forbidden", "a viewer key cannot upload files", kind="forbidden")
        found = await self.batches.load(batch_id, who)
        if state and found.status not in UNSUBMITTED:
            raise Problem(
                409,
                "Conflict",
                f"files can only be uploaded before submission; the batch is {found.status}",
                kind="conflict",
                batch_status=found.status,
            )
        return found

    def check_parts(self, incoming: Sequence[IncomingFile]) -> None:
        """413 if there are too many files or one is too large; 422 if there is none."""
        if not incoming:
            raise Problem(
                422,
                "No files",
                "the multipart body holds no file part",
                kind="invalid-items",
            )
        if len(incoming) > self.max_files:
            raise Problem(
                413,
                "Payload too large",
                f"{len(incoming)} files in one request; at most {self.max_files} are accepted: "
                "send more requests",
                kind="payload-too-large",
                max_files=self.max_files,
            )
        for upload in incoming:
            size = _size_of(upload)
            if size > self.max_file_bytes:
                raise Problem(
                    413,
                    "Payload too large",
                    f"file {upload.filename!r} is {size} bytes; at most {self.max_file_bytes} "
                    "are accepted per file",
                    kind="payload-too-large",
                    max_file_bytes=self.max_file_bytes,
                    filename=upload.filename,
                )
            if len(upload.filename or "") > MAX_FILENAME:
                raise Problem(
                    422,
                    "Invalid items",
                    f"a file name is longer than {MAX_FILENAME} characters",
                    kind="invalid-items",
                )

    async def upload(
        self,
        batch_id: str,
        incoming: Sequence[IncomingFile],
        who: Principal,
        key: str | None = None,
    ) -> ItemsAdded:
        """Stores the files and adds their items; see the module's docstring. With an
        Idempotency-Key, a repeat of the same files (names, types and bytes) returns the
        first request's result and stores nothing again; other files under the same key are
        a 409."""
        self.check_parts(incoming)
        if not key:
            return await self._store(batch_id, incoming, who)
        # a repeat of an upload that succeeded is answered as it was, even once submitted
        await self.check(batch_id, who, state=False)
        return await self.batches.once(
            who,
            f"files:{batch_id}:{key}",
            _fingerprint(incoming),
            batch_id,
            lambda: self._store(batch_id, incoming, who),
            "different files",
        )

    async def _store(
        self, batch_id: str, incoming: Sequence[IncomingFile], who: Principal
    ) -> ItemsAdded:
        found = await self.check(batch_id, who)
        planned = [(new_file_id(batch_id), upload) for upload in incoming]
        items: list[dict[str, Any]] = [
            _item(file_id, upload.filename or "", _size_of(upload), upload.content_type)
            for file_id, upload in planned
        ]
        await self.batches.validate_items(found.doc["job_type"], items)
        stored: list[str] = []
        try:
            for (file_id, upload), item in zip(planned, items, strict=True):
                stored.append(file_id)
                upload.file.seek(0)
                saved = await self.files.put(
                    file_id,
                    upload.file,
                    tenant=who.tenant,
                    batch_id=batch_id,
                    filename=item["filename"],
                    content_type=upload.content_type,
                )
                item["size"] = saved.size
            added, total = await self.batches.add_items(batch_id, items, who, validate=False)
        except BaseException:
            await self._forget(stored)
            raise
        return ItemsAdded(
            batch_id=batch_id,
            added=added,
            total=total,
            files=[FileAdded.model_validate(item) for item in items],
        )

    async def _forget(self, file_ids: list[str]) -> None:
        """Deletes what a failed request stored (best effort: the store may be what failed;
        the batch's deletion removes leftovers)."""
        try:
            await self.files.delete(file_ids)
        except Exception:
            log.exception("files of a failed upload could not be deleted: %s", file_ids)


def _fingerprint(incoming: Sequence[IncomingFile]) -> str:
    """A hash of the files' names, declared types and bytes (read from the spooled parts)."""
    digest = hashlib.sha256()
    for upload in incoming:
        digest.update(f"{upload.filename}\0{upload.content_type}\0".encode())
        upload.file.seek(0)
        content = hashlib.sha256()
        while data := upload.file.read(CHUNK_BYTES):
            content.update(data)
        digest.update(content.digest())
    return digest.hexdigest()


def _size_of(upload: IncomingFile) -> int:
    if upload.size is not None:
        return upload.size
    with contextlib.suppress(OSError):
        position = upload.file.tell()
        size = upload.file.seek(0, 2)
        upload.file.seek(position)
        return size
    return 0


def _item(file_id: str, filename: str, size: int, content_type: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"file_id": file_id, "filename": filename, "size": size}
    if content_type:
        item["content_type"] = content_type
    return item
