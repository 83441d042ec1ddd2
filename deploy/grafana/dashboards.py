# ruff: noqa: E501 - PromQL queries read best on one line
"""Generates the Grafana dashboards in deploy/grafana/dashboards/ (provisioned JSON).

    python deploy/grafana/dashboards.py          # rewrite the JSON files
    python deploy/grafana/dashboards.py --check  # exit 1 if they differ from this source

The JSON is the deployable artefact; this file is its source, so queries stay reviewable.
tests/unit/test_observability.py checks the files are up to date; tests/e2e/test_metrics.py
checks every metric the queries use exists on a running stack."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"

Panel = dict[str, Any]


def timeseries(
    title: str, *targets: tuple[str, str], unit: str = "short", stack: bool = False
) -> Panel:
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {"stacking": {"mode": "normal" if stack else "none"}, "fillOpacity": 10},
            },
            "overrides": [],
        },
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            }
        },
        "targets": [
            {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(65 + i)}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def stat(
    title: str, expr: str, unit: str = "short", thresholds: list[float] | None = None
) -> Panel:
    steps = [{"color": "green", "value": None}]
    for value, color in zip(thresholds or [], ("orange", "red"), strict=False):
        steps.append({"color": color, "value": value})
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": [{"datasource": DATASOURCE, "expr": expr, "refId": "A"}],
    }


def table(title: str, expr: str) -> Panel:
    return {
        "type": "table",
        "title": title,
        "datasource": DATASOURCE,
        "targets": [
            {
                "datasource": DATASOURCE,
                "expr": expr,
                "format": "table",
                "instant": True,
                "refId": "A",
            }
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
    }


def dashboard(uid: str, title: str, rows: list[list[Panel]]) -> dict[str, Any]:
    """Panels laid out in rows: stats 4 wide and 4 high, others share the row's 24 columns."""
    panels, y, next_id = [], 0, 1
    for row in rows:
        height = 4 if all(p["type"] == "stat" for p in row) else 8
        width = 24 // len(row)
        for i, panel in enumerate(row):
            panels.append(
                {
                    **panel,
                    "id": next_id,
                    "gridPos": {"h": height, "w": width, "x": i * width, "y": y},
                }
            )
            next_id += 1
        y += height
    return {
        "uid": uid,
        "title": title,
        "tags": ["batchyard"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "editable": True,
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def batch_overview() -> dict[str, Any]:
    return dashboard(
        "batchyard-batches",
        "Batchyard / Batches",
        [
            [
                stat("Running batches", 'max(batchyard_batches{status="running"})'),
                stat("Queued batches", 'max(batchyard_batches{status="queued"})'),
                stat("Paused batches", 'max(batchyard_batches{status="paused"})'),
                stat("Jobs running", 'max(batchyard_jobs_in_flight{state="running"})'),
                stat(
                    "Dispatched, not started",
                    "max(batchyard_jobs_dispatched_unstarted)",
                    thresholds=[100, 1000],
                ),
                stat(
                    "Stuck batches (10 min)",
                    'count(time() - batchyard_batch_last_progress_timestamp_seconds{status=~"running|retrying"} > 600) or vector(0)',
                    thresholds=[1],
                ),
            ],
            [
                timeseries(
                    "Unfinished batches by status",
                    ("max by (status) (batchyard_batches)", "{{status}}"),
                    stack=True,
                ),
                timeseries(
                    "Batches finished",
                    (
                        f"sum by (status) (increase(batchyard_batches_finished_total[{RATE}]))",
                        "{{status}}",
                    ),
                ),
            ],
            [
                timeseries(
                    "Jobs per second",
                    (f"sum(rate(batchyard_jobs_dispatched_total[{RATE}]))", "dispatched"),
                    (f"sum(rate(batchyard_jobs_completed_total[{RATE}]))", "completed"),
                    (f"sum(rate(batchyard_jobs_skipped_total[{RATE}]))", "skipped"),
                    (f"sum(rate(batchyard_jobs_failed_total[{RATE}]))", "failed"),
                    (f"sum(rate(batchyard_jobs_retried_total[{RATE}]))", "retried"),
                    unit="ops",
                ),
                timeseries(
                    "Jobs in flight",
                    ("max by (state) (batchyard_jobs_in_flight)", "{{state}}"),
                    ("max(batchyard_jobs_waiting_retry)", "waiting to retry"),
                    stack=True,
                ),
            ],
            [
                timeseries(
                    "Projection lag (event → read model)",
                    (
                        f"histogram_quantile(0.5, sum by (le) (rate(batchyard_projection_lag_seconds_bucket[{RATE}])))",
                        "p50",
                    ),
                    (
                        f"histogram_quantile(0.99, sum by (le) (rate(batchyard_projection_lag_seconds_bucket[{RATE}])))",
                        "p99",
                    ),
                    unit="s",
                ),
                table(
                    "Unfinished batches: seconds since a job last finished",
                    "time() - max by (batch_id, status) (batchyard_batch_last_progress_timestamp_seconds)",
                ),
            ],
            [
                timeseries(
                    "Rollbacks",
                    (f"sum by (step) (increase(batchyard_rollbacks_total[{RATE}]))", "{{step}}"),
                ),
                timeseries(
                    "Jobs restored by rollbacks per second",
                    (f"sum(rate(batchyard_rollback_jobs_restored_total[{RATE}]))", "restored"),
                    unit="ops",
                ),
            ],
        ],
    )


def executors() -> dict[str, Any]:
    return dashboard(
        "batchyard-executors",
        "Batchyard / Executor fleet and throughput",
        [
            [
                stat("Live executors", "max(batchyard_scheduler_executors)", thresholds=[]),
                stat("Slots total", 'max(batchyard_scheduler_executor_slots{state="total"})'),
                stat("Slots free", 'max(batchyard_scheduler_executor_slots{state="free"})'),
                stat("Scheduler leader", "max(batchyard_scheduler_leader)"),
            ],
            [
                timeseries(
                    "Slots per executor",
                    (
                        'sum by (instance) (batchyard_executor_slots{state="total"}) - sum by (instance) (batchyard_executor_slots{state="free"})',
                        "busy {{instance}}",
                    ),
                    (
                        'sum by (instance) (batchyard_executor_slots{state="total"})',
                        "total {{instance}}",
                    ),
                ),
                timeseries(
                    "Completed jobs per second by job type",
                    (
                        f"sum by (job_type) (rate(batchyard_jobs_completed_total[{RATE}]))",
                        "{{job_type}}",
                    ),
                    unit="ops",
                ),
            ],
            [
                timeseries(
                    "Job duration by job type",
                    (
                        f"histogram_quantile(0.5, sum by (le, job_type) (rate(batchyard_job_duration_seconds_bucket[{RATE}])))",
                        "p50 {{job_type}}",
                    ),
                    (
                        f"histogram_quantile(0.95, sum by (le, job_type) (rate(batchyard_job_duration_seconds_bucket[{RATE}])))",
                        "p95 {{job_type}}",
                    ),
                    unit="s",
                ),
                timeseries(
                    "Failures by job type and error class",
                    (
                        f"sum by (job_type, error_class) (rate(batchyard_jobs_failed_total[{RATE}]))",
                        "{{job_type}} {{error_class}}",
                    ),
                    unit="ops",
                ),
            ],
            [
                timeseries(
                    "Scheduler decision latency",
                    (
                        f"histogram_quantile(0.5, sum by (le) (rate(batchyard_scheduler_decision_seconds_bucket[{RATE}])))",
                        "p50",
                    ),
                    (
                        f"histogram_quantile(0.99, sum by (le) (rate(batchyard_scheduler_decision_seconds_bucket[{RATE}])))",
                        "p99",
                    ),
                    unit="s",
                ),
                timeseries(
                    "Jobs started per executor",
                    (
                        f"sum by (instance) (rate(batchyard_jobs_started_total[{RATE}]))",
                        "{{instance}}",
                    ),
                    unit="ops",
                ),
            ],
            [
                # every service's own resources (prometheus_client's process collector)
                timeseries(
                    "CPU per service process (cores)",
                    (
                        f"sum by (job, instance) (rate(process_cpu_seconds_total[{RATE}]))",
                        "{{job}} {{instance}}",
                    ),
                ),
                timeseries(
                    "Memory per service process (resident)",
                    (
                        "sum by (job, instance) (process_resident_memory_bytes)",
                        "{{job}} {{instance}}",
                    ),
                    unit="bytes",
                ),
            ],
        ],
    )


def kafka() -> dict[str, Any]:
    return dashboard(
        "batchyard-kafka",
        "Batchyard / Kafka lag and messaging",
        [
            [
                stat(
                    "Dispatch lag (executors)",
                    'max(batchyard_consumer_lag_messages{topic=~".*batchyard.job.dispatch"})',
                    thresholds=[1000, 10000],
                ),
                stat(
                    "Total lag",
                    "sum(max by (group, topic) (batchyard_consumer_lag_messages))",
                    thresholds=[1000, 10000],
                ),
                stat(
                    "Dead letters (1h)",
                    "sum(increase(batchyard_dead_letters_total[1h])) or vector(0)",
                    thresholds=[1],
                ),
                stat(
                    "Lag measured (s ago)",
                    "time() - min(batchyard_consumer_lag_updated_timestamp_seconds)",
                    unit="s",
                    thresholds=[30, 120],
                ),
            ],
            [
                timeseries(
                    "Consumer lag by group and topic",
                    (
                        "max by (group, topic) (batchyard_consumer_lag_messages)",
                        "{{group}} / {{topic}}",
                    ),
                ),
                timeseries(
                    "Dead letters by service and source topic",
                    (
                        f"sum by (service, source_topic) (increase(batchyard_dead_letters_total[{RATE}]))",
                        "{{service}} ← {{source_topic}}",
                    ),
                ),
            ],
            [
                timeseries(
                    "Messages consumed per second by topic",
                    (
                        f"sum by (handler) (rate(faststream_received_messages_total[{RATE}]))",
                        "{{handler}}",
                    ),
                    unit="ops",
                ),
                timeseries(
                    "Messages published per second by topic",
                    (
                        f"sum by (destination) (rate(faststream_published_messages_total[{RATE}]))",
                        "{{destination}}",
                    ),
                    unit="ops",
                ),
            ],
            [
                timeseries(
                    "Consumed batch handling time",
                    (
                        f"histogram_quantile(0.99, sum by (le, handler) (rate(faststream_received_processed_messages_duration_seconds_bucket[{RATE}])))",
                        "p99 {{handler}}",
                    ),
                    unit="s",
                ),
                timeseries(
                    "Handling failures (redelivered batches)",
                    (
                        f"sum by (handler) (rate(faststream_received_processed_messages_exceptions_total[{RATE}]))",
                        "{{handler}}",
                    ),
                    unit="ops",
                ),
            ],
        ],
    )


def api() -> dict[str, Any]:
    count = "batchyard_http_request_duration_seconds_count"
    bucket = "batchyard_http_request_duration_seconds_bucket"
    return dashboard(
        "batchyard-api",
        "Batchyard / API",
        [
            [
                stat(
                    "Requests per second",
                    f'sum(rate({count}{{service="batch-api"}}[5m]))',
                    unit="reqps",
                ),
                stat(
                    "5xx ratio",
                    f'sum(rate({count}{{service="batch-api",status=~"5.."}}[5m])) / sum(rate({count}{{service="batch-api"}}[5m])) or vector(0)',
                    unit="percentunit",
                    thresholds=[0.01, 0.05],
                ),
                stat(
                    "p99 latency",
                    f'histogram_quantile(0.99, sum by (le) (rate({bucket}{{service="batch-api"}}[5m])))',
                    unit="s",
                    thresholds=[0.02, 0.1],
                ),
                stat(
                    "Batches accepted (1h)",
                    "sum(increase(batchyard_batches_created_total[1h])) or vector(0)",
                ),
            ],
            [
                timeseries(
                    "Requests by route and status",
                    (
                        f'sum by (method, route, status) (rate({count}{{service="batch-api"}}[{RATE}]))',
                        "{{method}} {{route}} {{status}}",
                    ),
                    unit="reqps",
                ),
                timeseries(
                    "Latency by route (p99)",
                    (
                        f'histogram_quantile(0.99, sum by (le, method, route) (rate({bucket}{{service="batch-api"}}[{RATE}])))',
                        "{{method}} {{route}}",
                    ),
                    unit="s",
                ),
            ],
            [
                timeseries(
                    "Commands sent by type",
                    (f"sum by (type) (rate(batchyard_commands_sent_total[{RATE}]))", "{{type}}"),
                    unit="ops",
                ),
                timeseries(
                    "Items accepted per second",
                    (f"sum(rate(batchyard_batch_items_accepted_total[{RATE}]))", "items"),
                    unit="ops",
                ),
            ],
        ],
    )


DASHBOARDS = {
    "batch-overview.json": batch_overview,
    "executor-fleet.json": executors,
    "kafka-lag.json": kafka,
    "api.json": api,
}


def rendered() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    stale = []
    for name, text in rendered().items():
        path = OUT / name
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale dashboards (run python {Path(__file__).name}): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
