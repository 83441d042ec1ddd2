"""No service imports another service: they share only libs/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "batch-api": "batch_api",
    "scheduler": "scheduler",
    "executor": "executor",
    "rollback": "rollback",
    "reporter": "reporter",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_imports_no_other_service(service: str) -> None:
    others = set(SERVICES.values()) - {SERVICES[service]}
    src = ROOT / "services" / service / "src"
    files = list(src.rglob("*.py"))
    assert files
    for path in files:
        bad = imported_modules(path) & others
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_is_a_package_with_one_composition_root(service: str) -> None:
    base = ROOT / "services" / service
    assert (base / "pyproject.toml").exists()
    assert (base / "src" / SERVICES[service] / "bootstrap.py").exists()
    assert list((base / "tests").glob("test_*.py")), f"{service} has no unit tests"
