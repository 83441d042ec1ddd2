"""The metric names PromQL expressions use, for checking dashboards and alert rules against
what the services export. A small scanner, not a parser: it removes strings, label matchers,
ranges, grouping clauses and Grafana variables, then keeps identifiers that are not functions,
keywords or aggregation operators."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "batchyard.rules.yml"

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk",
    "bottomk", "quantile", "count_values", "group", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_IDENT = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    text = _VARIABLE.sub("", expr)
    text = _STRING.sub("", text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for name, call in _IDENT.findall(text):
        if call or name.lower() in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def _dashboard_exprs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_exprs(item)


def dashboard_queries() -> dict[str, list[str]]:
    """Every query of every provisioned dashboard, by file name."""
    return {
        path.name: list(_dashboard_exprs(json.loads(path.read_text(encoding="utf-8"))))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def rule_queries() -> dict[str, str]:
    """Every alert rule's expression, by alert name."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used (dashboard file or alert name)."""
    used: dict[str, set[str]] = {}
    sources: Iterable[tuple[str, str]] = [
        *((name, q) for name, qs in dashboard_queries().items() for q in qs),
        *rule_queries().items(),
    ]
    for where, query in sources:
        for metric in metric_names(query):
            used.setdefault(metric, set()).add(where)
    return used
