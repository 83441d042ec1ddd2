"""An in-memory SchedulerStore for unit tests of the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Document = dict[str, Any]


class InMemorySchedulerStore:
    def __init__(self) -> None:
        self.batches: dict[str, Document] = {}
        self.chunks: dict[str, Document] = {}
        self.jobs: dict[str, Document] = {}

    async def setup(self) -> None:
        return None

    async def insert_batch(self, doc: Document) -> bool:
        if doc["_id"] in self.batches:
            return False
        self.batches[doc["_id"]] = dict(doc)
        return True

    async def save_batches(self, docs: Sequence[Document]) -> None:
        for d in docs:
            self.batches.setdefault(d["_id"], {}).update(d)

    async def insert_chunk(
        self, batch_id: str, chunk: int, first_index: int, items: list[dict[str, Any]]
    ) -> bool:
        key = f"{batch_id}:{chunk}"
        if key in self.chunks:
            return False
        self.chunks[key] = {
            "batch_id": batch_id,
            "chunk": chunk,
            "first_index": first_index,
            "count": len(items),
            "items": items,
        }
        return True

    async def chunk_items(self, batch_id: str, chunk: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.chunks[f"{batch_id}:{chunk}"]["items"]
        return items

    async def chunk_layout(self, batch_id: str) -> list[tuple[int, int, int]]:
        return [
            (c["chunk"], c["first_index"], c["count"])
            for c in self.chunks.values()
            if c["batch_id"] == batch_id
        ]

    async def write_jobs(self, batch_id: str, changes: dict[int, dict[str, Any]]) -> None:
        for index, fields in changes.items():
            self.jobs.setdefault(f"{batch_id}.{index}", {"batch_id": batch_id, "index": index})
            self.jobs[f"{batch_id}.{index}"].update(fields)

    async def job_states(self, batch_id: str) -> dict[int, dict[str, Any]]:
        return {j["index"]: dict(j) for j in self.jobs.values() if j["batch_id"] == batch_id}

    async def active_batches(self) -> list[Document]:
        active = {"draft", "uploading", "queued", "running", "paused", "retrying"}
        return [dict(d) for d in self.batches.values() if d.get("status") in active]

    async def find_batch(self, batch_id: str) -> Document | None:
        return self.batches.get(batch_id)

    async def tenant_batches(self, tenant: str) -> list[Document]:
        return [dict(d) for d in self.batches.values() if d.get("tenant") == tenant]

    async def drop_job_documents(self, batch_id: str) -> None:
        for key in [k for k, c in self.chunks.items() if c["batch_id"] == batch_id]:
            del self.chunks[key]
        for key in [k for k, j in self.jobs.items() if j["batch_id"] == batch_id]:
            del self.jobs[key]

    async def delete_batch(self, batch_id: str) -> None:
        self.batches.pop(batch_id, None)
