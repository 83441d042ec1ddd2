"""Prometheus for the local stack (``make up PROMETHEUS=1``): scrapes every service process
and evaluates Batchyard's alert rules (deploy/prometheus/rules), so the metrics can be seen
and queried locally at http://127.0.0.1:9090 (``BATCHYARD_PROMETHEUS_PORT``).

Contract: :func:`config` is pure (targets from the service table, one job per service with
executors together); :func:`start` writes it to ``.batchyard/prometheus.yml`` and starts
Debian's ``prometheus`` as tracked process ``prometheus`` with its data under
``.batchyard/data/prometheus``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from devstack import probes, processes
from devstack.paths import Paths
from devstack.services import ServicePorts, service_specs

NAME = "prometheus"
PORT_ENV = "BATCHYARD_PROMETHEUS_PORT"
DEFAULT_PORT = 9090


def port() -> int:
    raw = os.environ.get(PORT_ENV, "").strip()
    return int(raw) if raw else DEFAULT_PORT


def config(executors: int, ports: ServicePorts, rules_dir: Path) -> dict[str, Any]:
    jobs: dict[str, list[str]] = {}
    for spec in service_specs(executors, ports):
        job = "executor" if spec.name.startswith("executor-") else spec.name
        jobs.setdefault(job, []).append(f"{spec.host}:{spec.port}")
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "15s"},
        "rule_files": [str(rules_dir / "batchyard.rules.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in jobs.items()
        ],
    }


def start(paths: Paths, executors: int, ports: ServicePorts) -> processes.ProcessRecord:
    rules = paths.root / "deploy" / "prometheus" / "rules"
    config_file = paths.state / "prometheus.yml"
    # JSON is YAML: no YAML library needed to write Prometheus' config
    config_file.write_text(json.dumps(config(executors, ports, rules), indent=2))
    data = paths.data / "prometheus"
    data.mkdir(parents=True, exist_ok=True)
    listen = port()
    return processes.start_process(
        NAME,
        [
            processes.resolve_program("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{listen}",
            "--storage.tsdb.retention.time=2d",
        ],
        dict(os.environ),
        paths.log_file(NAME),
        run_dir=paths.run,
        cwd=paths.root,
        meta={"port": str(listen), "url": f"http://127.0.0.1:{listen}/"},
    )


def is_ready(listen: int) -> bool:
    return probes.http_status(f"http://127.0.0.1:{listen}/-/ready", timeout=1.0) == 200
