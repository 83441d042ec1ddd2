"""Shared by e2e, browser and chaos tests: a handle on a running copy of the system."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


@contextmanager
def service_process(
    script: str, env: Mapping[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs one service console script from this venv with `env`, logging to `log_path`;
    stops it on exit (SIGTERM, then SIGKILL after 15 s)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / script)], env=dict(env), stdout=log, stderr=log
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
