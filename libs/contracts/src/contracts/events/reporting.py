"""Events of the reporter, on `Topics.reports` keyed by batch id."""

from __future__ import annotations

from pydantic import Field

from contracts.events.base import Event


class BatchReportReady(Event):
    TYPE = "BatchReportReady"
    batch_id: str
    status: str
    total: int
    completed: int
    failed: int
    success_rate: float
    average_duration_ms: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
