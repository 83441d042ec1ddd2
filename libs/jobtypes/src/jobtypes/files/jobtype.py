"""`files.extract_metadata`: one job reads one uploaded file from the store and reports its
size, media type, SHA-256 and, for text, encoding, lines, words and characters.

Items are what an upload (`POST /v1/batches/{id}/items` with `multipart/form-data`) adds:
`{"file_id", "filename", "size", "content_type"}`. The file is streamed chunk by chunk
(`servicekit.files`), so a job holds one chunk (255 KiB) at a time whatever the file's size.
A file that is not stored (never uploaded, or deleted with its batch) is the permanent
`FileNotFound`; a file whose stored chunks do not add up is the permanent `FileCorrupt`; an
unreachable or failing store is the retryable `StoreError`.

Numeric outputs become the job's metrics, so a batch report sums `size_bytes` (bytes
processed), `text_file` (text files), `lines` and `words` over the batch."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo.errors import PyMongoError

from jobkit import JobContext, JobType, PermanentError, Resources, RetryableError
from jobtypes.files.analysis import FileAnalysis
from servicekit.files import FileCorrupt, FileStore, StoredFile

PROGRESS_EVERY_BYTES = 8 * 1024 * 1024


class FileRef(BaseModel):
    """An uploaded file, as the upload made it an item."""

    model_config = ConfigDict(extra="forbid")

    file_id: str = Field(min_length=1, max_length=200)
    filename: str = Field(default="", max_length=1000)
    size: int | None = Field(default=None, ge=0, description="bytes, as uploaded")
    content_type: str | None = Field(
        default=None, max_length=200, description="what the uploader declared"
    )


class FileMetadata(BaseModel):
    file_id: str
    filename: str
    size_bytes: int
    sha256: str
    media_type: str
    media_type_source: str = Field(description="content (magic bytes), filename or default")
    declared_content_type: str | None = None
    text_file: int = Field(description="1 for a text file, 0 otherwise (summed per batch)")
    encoding: str | None = None
    lines: int | None = None
    words: int | None = None
    chars: int | None = None


class ExtractMetadata(JobType):
    name = "files.extract_metadata"
    Input = FileRef
    Output = FileMetadata
    description = (
        "Size, media type, SHA-256 and text statistics (encoding, lines, words) of an "
        "uploaded file."
    )

    def __init__(self) -> None:
        self._files: FileStore | None = None

    async def setup(self, resources: Resources) -> None:
        if resources.store is not None:
            self._files = FileStore(resources.store)

    @property
    def files(self) -> FileStore:
        if self._files is None:
            raise PermanentError("no store was given to this job type", error_class="NoStore")
        return self._files

    async def run(self, item: FileRef, ctx: JobContext) -> dict[str, Any]:
        try:
            return await self._run(item, ctx)
        except PyMongoError as exc:  # a busy or unreachable store: worth another attempt
            raise RetryableError(f"the store failed: {exc}", error_class="StoreError") from exc

    async def _run(self, item: FileRef, ctx: JobContext) -> dict[str, Any]:
        stored = await self.files.get(item.file_id)
        if stored is None or not stored.complete:
            raise PermanentError(
                f"file {item.file_id} ({item.filename or 'no name'}) is not in the store",
                error_class="FileNotFound",
            )
        analysis = FileAnalysis()
        next_report = PROGRESS_EVERY_BYTES
        try:
            async for data in self.files.read(stored):
                analysis.feed(data)
                if analysis.size >= next_report and stored.size:
                    next_report += PROGRESS_EVERY_BYTES
                    await ctx.report_progress(100 * analysis.size / stored.size)
        except FileCorrupt as exc:
            raise PermanentError(str(exc), error_class="FileCorrupt") from exc
        facts = analysis.finish(stored.filename or item.filename)
        for warning in _odd(facts.size, facts.media_type, facts.media_type_source, stored):
            ctx.warn(warning)
        return FileMetadata(
            file_id=item.file_id,
            filename=stored.filename or item.filename,
            size_bytes=facts.size,
            sha256=facts.sha256,
            media_type=facts.media_type,
            media_type_source=facts.media_type_source,
            declared_content_type=stored.content_type,
            text_file=int(facts.is_text),
            encoding=facts.encoding,
            lines=facts.lines,
            words=facts.words,
            chars=facts.chars,
        ).model_dump()


def _odd(size: int, media_type: str, source: str, stored: StoredFile) -> list[str]:
    """What is odd about a file, worth a warning with its metadata: it is empty, its type
    was only a guess, or the type it was uploaded as is not what its content is."""
    warnings = []
    if size == 0:
        warnings.append("the file is empty")
    if source == "default":
        warnings.append(f"neither its content nor its name tells its type: called it {media_type}")
    declared = (stored.content_type or "").split(";")[0].strip().lower()
    generic = ("", "application/octet-stream", "binary/octet-stream")
    if source == "content" and declared not in generic and declared != media_type:
        warnings.append(f"uploaded as {declared}, but its content is {media_type}")
    return warnings
