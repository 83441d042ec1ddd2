"""Progress arithmetic shown to people: percent, throughput, elapsed time and ETA."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def progress_of(
    counts: dict[str, Any], started_at: datetime | None, finished_at: datetime | None, now: datetime
) -> dict[str, Any]:
    total = int(counts.get("total", 0))
    done = sum(int(counts.get(k, 0)) for k in ("completed", "failed", "skipped", "cancelled"))
    out: dict[str, Any] = {
        k: int(counts.get(k, 0))
        for k in (
            "pending",
            "dispatched",
            "running",
            "completed",
            "failed",
            "retrying",
            "skipped",
            "cancelled",
        )
    }
    out["total"] = total
    out["percent"] = round(100.0 * done / total, 2) if total else 0.0
    if started_at is not None:
        end = finished_at or now
        elapsed = max((end - started_at).total_seconds(), 0.0)
        out["elapsed_s"] = round(elapsed, 3)
        if elapsed > 0:
            rate = done / elapsed
            out["throughput_per_s"] = round(rate, 2)
            if finished_at is None and rate > 0:
                out["eta_s"] = round((total - done) / rate, 1)
        if finished_at is not None:
            out["eta_s"] = 0.0
    return out
