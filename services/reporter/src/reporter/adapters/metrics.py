"""The reporter's Prometheus metrics: how far the read models are behind the events."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROJECTION_LAG = Histogram(
    "batchyard_projection_lag_seconds",
    "Time from an event's occurrence to its projection into the read model",
    # finer around the 1 s target (docs/performance.md), so its p99 says which side it is on
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 5, 10, 30),
)
EVENTS_PROJECTED = Counter(
    "batchyard_events_projected_total", "Events applied to the read models, by type", ["type"]
)
REPORTS_READY = Counter(
    "batchyard_reports_ready_total", "Final batch reports announced, by batch status", ["status"]
)
WEBHOOK_ATTEMPTS = Counter(
    "batchyard_webhook_attempts_total", "Webhook delivery attempts, by result", ["result"]
)
WEBHOOKS_DONE = Counter(
    "batchyard_webhook_deliveries_total",
    "Webhook deliveries that ended, by outcome (delivered or failed)",
    ["outcome"],
)
