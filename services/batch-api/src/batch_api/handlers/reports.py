"""Reports and exports of one batch, streamed: every job is read once per pass, bucket by
bucket by `_id` (the store scans on any other filter), and nothing holds the whole batch.

- `report`: the summary (`domain.report.ReportTally`) as JSON.
- `csv_rows`: one CSV line per job, after a header line.
- `export_zip`: a ZIP written incrementally (batch.json, jobs.csv, report.json, and
  events.jsonl: the batch's event log, then every job attempt)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from batch_api.adapters.views import ReadModels
from batch_api.api.problems import Problem
from batch_api.domain.analytics import BatchAnalyticsTally, StatsTally
from batch_api.domain.lifecycle import status_of
from batch_api.domain.principal import Principal
from batch_api.domain.report import JobRow, ReportTally, job_row
from batch_api.handlers.batches import BatchService, Loaded, public_batch, require_jobs
from batch_api.handlers.jobs import job_status, underlying_status
from batch_api.report_schemas import BatchAnalytics, BatchReport, Stats
from servicekit.buckets import view_buckets
from servicekit.store import Document

STATS_PAGE = 500
ROWS_PER_CHUNK = 1000  # CSV rows written out (streamed) at a time
CSV_COLUMNS = (
    "job_id",
    "index",
    "status",
    "attempt",
    "duration_s",
    "error_class",
    "error_message",
    "output",  # a completed job's output as JSON
    "warnings",  # a completed job's warnings, a JSON array (empty when none)
    "skip_reason",  # why a skipped job did nothing
)


@dataclass
class ReportService:
    batches: BatchService
    read_models: ReadModels
    max_export_jobs: int = 1_000_000

    async def load(self, batch_id: str, who: Principal) -> Loaded:
        """The batch if the caller may see it; a 404 problem otherwise."""
        return await self.batches.load(batch_id, who)

    def check_export_size(self, found: Loaded, what: str) -> None:
        """A 422 problem if the batch has more jobs than an export may hold."""
        total = int(found.doc.get("total") or 0)
        if total > self.max_export_jobs:
            raise Problem(
                422,
                "Export too large",
                f"the batch has {total:,} jobs; a {what} holds at most "
                f"{self.max_export_jobs:,}. Page through GET /v1/batches/{found.doc['_id']}/jobs "
                "instead, or ask the operator to raise BATCHYARD_API_MAX_EXPORT_JOBS",
                kind="export-too-large",
                jobs=total,
                limit=self.max_export_jobs,
            )

    async def jobs(self, found: Loaded) -> AsyncIterator[tuple[JobRow, dict[str, Any] | None]]:
        """(row, view) of every job of the batch in index order; jobs never started have no
        view (None)."""
        batch_id = found.doc["_id"]
        total = int(found.doc.get("total") or 0)
        underlying = underlying_status(found)
        layout = view_buckets(found.view)
        for bucket in range(layout.count(total)):
            views = await self.read_models.job_bucket(batch_id, layout, bucket)
            for index in layout.indexes(bucket, total):
                view = views.get(layout.of(index)[1])
                status = job_status(found, index, view, underlying)
                yield job_row(batch_id, index, status, view), view

    async def report(self, found: Loaded) -> BatchReport:
        kept = found.doc.get("retained_report")
        if kept is not None:  # archived by retention: the report kept then
            return BatchReport.model_validate({**kept, "status": found.status})
        tally = ReportTally()
        async for row, view in self.jobs(found):
            tally.add(row, view)
        return self._report(found, tally)

    async def analytics(self, found: Loaded) -> BatchAnalytics:
        kept = found.doc.get("retained_analytics")
        if kept is not None:
            return BatchAnalytics.model_validate({**kept, "status": found.status})
        tally = BatchAnalyticsTally()
        async for row, view in self.jobs(found):
            tally.add(row.status, view)
        view = found.view or {}
        now = datetime.now(UTC)
        until = view.get("finished_at") or now
        return BatchAnalytics.model_validate(
            {
                "batch_id": found.doc["_id"],
                "status": found.status,
                "generated_at": now,
                **tally.summary(view.get("started_at"), until),
            }
        )

    async def stats(self, who: Principal, since: datetime, until: datetime) -> Stats:
        """The tenant's batches created in [since, until): one pass over the registry, newest
        first, their views read `STATS_PAGE` at a time. (Reading a page of `STATS_PAGE` per
        query made the local store read from the newest batch again for each page: 24 s for
        5,000 batches, against 3 s now; docs/performance.md.)"""
        tally = StatsTally()
        query = {"tenant": who.tenant, "created_at": {"$gte": since, "$lt": until}}
        page: list[Document] = []
        async for doc in self.batches.registry.scan(query, STATS_PAGE):
            page.append(doc)
            if len(page) == STATS_PAGE:
                await self._tally_stats(tally, page)
                page = []
        await self._tally_stats(tally, page)
        return Stats.model_validate(tally.summary(since, until))

    async def _tally_stats(self, tally: StatsTally, docs: list[Document]) -> None:
        views = await self.read_models.batch_views_by_id([d["_id"] for d in docs])
        for doc in docs:
            view = views.get(doc["_id"])
            counts = (view or {}).get("counts") or {}
            tally.add(status_of(doc, view), doc["job_type"], counts)

    def _report(self, found: Loaded, tally: ReportTally) -> BatchReport:
        doc = found.doc
        return BatchReport.model_validate(
            {
                "batch_id": doc["_id"],
                "name": doc["name"],
                "status": found.status,
                "job_type": doc["job_type"],
                "generated_at": datetime.now(UTC),
                **tally.summary(),
            }
        )

    def require_jobs(self, found: Loaded) -> None:
        """A 410 problem if the batch's per-job records were removed by retention."""
        require_jobs(found)

    async def csv_lines(self, found: Loaded) -> AsyncIterator[str]:
        """The header line, then one line per job; yields about one bucket at a time."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        count = 0
        async for row, _ in self.jobs(found):
            writer.writerow(_csv_row(row))
            count += 1
            if count % ROWS_PER_CHUNK == 0:
                yield _drain(out)
        yield _drain(out)

    async def export_zip(self, found: Loaded) -> AsyncIterator[bytes]:
        """The ZIP archive, chunk by chunk, as its entries are written."""
        sink = _Sink()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            batch = public_batch(found.doc, found.view).model_dump(mode="json")
            archive.writestr("batch.json", orjson.dumps(batch, option=orjson.OPT_INDENT_2))
            yield sink.drain()
            tally = ReportTally()
            with archive.open("jobs.csv", "w") as entry:
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
                count = 0
                async for row, view in self.jobs(found):
                    tally.add(row, view)
                    writer.writerow(_csv_row(row))
                    count += 1
                    if count % ROWS_PER_CHUNK == 0:
                        entry.write(_drain(out).encode())
                        yield sink.drain()
                entry.write(_drain(out).encode())
            yield sink.drain()
            report = self._report(found, tally).model_dump(mode="json")
            archive.writestr("report.json", orjson.dumps(report, option=orjson.OPT_INDENT_2))
            yield sink.drain()
            with archive.open("events.jsonl", "w") as entry:
                async for line in self.event_lines(found):
                    entry.write(line)
                    if sink.size() >= 64 * 1024:
                        yield sink.drain()
        yield sink.drain()

    async def event_lines(self, found: Loaded) -> AsyncIterator[bytes]:
        """The batch's history: its event log (`batch_event` lines: commands with who sent
        them, state changes, deadlines, rollbacks; oldest first), then one `job_attempt` line
        per job attempt, in job then attempt order."""
        batch_id = found.doc["_id"]
        for entry in await self.read_models.batch_log(batch_id):
            record = {"type": "batch_event", "batch_id": batch_id, "event": entry.get("type")}
            record |= {k: v for k, v in entry.items() if k not in ("type", "at_us")}
            yield orjson.dumps(record, default=str) + b"\n"
        async for row, view in self.jobs(found):
            attempts = (view or {}).get("attempts") or {}
            for number, attempt in sorted(attempts.items(), key=lambda kv: int(kv[0])):
                record = {
                    "type": "job_attempt",
                    "batch_id": batch_id,
                    "job_id": row.job_id,
                    "index": row.index,
                    "attempt": int(number),
                    "executor": attempt.get("executor"),
                    "status": attempt.get("status", "running"),
                    "started_at": attempt.get("started_at"),
                    "finished_at": attempt.get("finished_at"),
                    "error": attempt.get("error"),
                }
                yield orjson.dumps(record, default=str) + b"\n"


def _csv_row(row: JobRow) -> tuple[object, ...]:
    return (
        row.job_id,
        row.index,
        row.status,
        row.attempt,
        "" if row.duration_s is None else row.duration_s,
        row.error_class or "",
        row.error_message or "",
        "" if row.output is None else orjson.dumps(row.output, default=str).decode(),
        orjson.dumps(row.warnings).decode() if row.warnings else "",
        row.skip_reason or "",
    )


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that `zipfile` writes into and the response drains:
    zipfile then writes data descriptors instead of seeking back."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._size += len(chunk)
        return len(chunk)

    def size(self) -> int:
        return self._size

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        return data
