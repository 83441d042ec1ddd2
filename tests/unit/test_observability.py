"""The observability files are valid and consistent: alert rules pass `promtool check rules`
and their own `promtool test rules` cases, the compose Prometheus config is valid and scrapes
every service, the dashboards are up to date with their source and query the provisioned
datasource. (tests/e2e/test_metrics.py checks the metric names against a running stack.)
promtool comes from Debian's prometheus package, installed by `make install`; missing, these
tests fail."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from promql_names import DASHBOARDS, RULES, dashboard_queries, metric_names, rule_queries

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: run `make install` (Debian's prometheus package)")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_alert_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rule_queries())} rules found" in done.stdout


def test_alert_rules_fire_as_their_unit_tests_say() -> None:
    done = promtool("test", "rules", "batchyard.rules.test.yml", cwd=RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n"
    )
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_alerts_cover_the_operational_failures() -> None:
    assert set(rule_queries()) >= {
        "BatchyardBatchStuck",
        "BatchyardDeadLettersGrowing",
        "BatchyardConsumerLagGrowing",
        "BatchyardExecutorCapacityExhausted",
        "BatchyardJobErrorRatioHigh",
        "BatchyardApiErrorRatioHigh",
        "BatchyardRollbackFailed",
    }


def test_compose_prometheus_config_is_valid_and_scrapes_every_service() -> None:
    done = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    scraped = {}
    for job in config["scrape_configs"]:
        for static in job.get("static_configs") or []:
            for target in static["targets"]:
                host, port = target.split(":")
                scraped[host] = int(port)
        for dns in job.get("dns_sd_configs") or []:
            for name in dns["names"]:
                scraped[name] = dns["port"]
    for service in ("batch-api", "scheduler", "rollback", "reporter", "executor"):
        port = int(compose[service]["environment"]["BATCHYARD_HTTP_PORT"])
        assert scraped.get(service) == port, service
    mounts = compose["prometheus"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in mounts


def test_dashboards_are_generated_from_their_source() -> None:
    done = subprocess.run(
        [sys.executable, str(GRAFANA_DIR / "dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_are_the_four_views_and_query_the_provisioned_datasource() -> None:
    assert set(dashboard_queries()) == {
        "batch-overview.json",
        "executor-fleet.json",
        "kafka-lag.json",
        "api.json",
    }
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    for path in DASHBOARDS.glob("*.json"):
        board = json.loads(path.read_text())
        assert board["uid"].startswith("batchyard-")
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert metric_names(target["expr"]), (path.name, panel["title"])
    provider = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "batchyard.yml").read_text()
    )["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert (
        f"./deploy/grafana/dashboards:{provider['options']['path']}:ro"
        in (compose["grafana"]["volumes"])
    )


def test_metric_names_are_found_in_queries() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_seconds_bucket{a="b"}[$__rate_interval])))'
    ) == {"http_seconds_bucket"}
    assert metric_names(
        'time() - max by (batch_id) (last_progress{status=~"running|x"}) > 600'
    ) == {"last_progress"}
    assert metric_names("a_total / on(job) group_left b_info or vector(0)") == {
        "a_total",
        "b_info",
    }
    assert metric_names("max(x) < 1 or absent(y)") == {"x", "y"}
