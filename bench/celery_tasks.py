"""The Celery side of the baseline: one no-op task, on the Redis broker and result backend
named by `BENCH_REDIS_URL`. A worker is started with `celery -A celery_tasks worker`."""

from __future__ import annotations

import os

from celery import Celery

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=REDIS, backend=REDIS)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(seconds: float = 0.0) -> dict[str, float]:
    """The same work as a `demo.sleep` job of 0 s: nothing, and a small result."""
    return {"slept_s": seconds}
