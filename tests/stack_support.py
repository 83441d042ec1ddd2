"""Shared by e2e, browser and chaos tests: a handle on a running copy of the system."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.services import ServicePorts


@dataclass(frozen=True)
class Stack:
    url: str
    admin_key: str
    prefix: str
    mongodb_url: str
    database: str
    run_dir: Path
    log_dir: Path
    ports: ServicePorts

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}
