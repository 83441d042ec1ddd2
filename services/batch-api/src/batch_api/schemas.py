"""HTTP schemas of the batch API: `XCreate` for requests, `XPublic` for responses. They are
separate from events and from stored documents; write models reject unknown fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.vocabulary import BatchConfig, PriorityName

MAX_INLINE_ITEMS = 10_000


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    job_type: str = Field(min_length=1, max_length=100)
    priority: PriorityName | int = "medium"
    tags: list[str] = Field(default_factory=list, max_length=50)
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_INLINE_ITEMS)
    config: BatchConfig = BatchConfig()


class Progress(BaseModel):
    total: int
    pending: int = 0
    dispatched: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    retrying: int = 0
    skipped: int = 0
    cancelled: int = 0
    percent: float
    throughput_per_s: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None


class BatchPublic(BaseModel):
    id: str
    name: str
    description: str
    job_type: str
    priority: PriorityName | int
    tags: list[str]
    owner: str
    status: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    config: dict[str, Any]
    progress: Progress
    reason: str | None = None


class BatchPage(BaseModel):
    items: list[BatchPublic]
    next_cursor: str | None = None


class JobTypePublic(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]
