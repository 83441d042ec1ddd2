"""An isolated copy of the system for chaos tests: three executors, short leases."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos_support import env_of
from stack_support import Stack

from devstack import services
from devstack.services import ServicePorts

ROOT = Path(__file__).resolve().parents[2]
EXECUTORS = 3


@pytest.fixture
def chaos_stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, mongodb_server: str
) -> Iterator[Stack]:
    """Parametrize indirectly with a dict to add environment variables to every service."""
    extra_env: dict[str, str] = getattr(request, "param", {})
    run_id = uuid.uuid4().hex[:8]
    base = ROOT / "artifacts" / f"chaos-{run_id}"
    database = f"byt_chaos_{run_id}"
    stack = Stack(
        url="",
        admin_key=f"bya_chaos_{uuid.uuid4().hex}",
        prefix=f"chaos{run_id}.",
        mongodb_url=f"{mongodb_server}/{database}",
        database=database,
        run_dir=base / "run",
        log_dir=base / "logs",
        ports=ServicePorts.pick_free(EXECUTORS),
    )
    stack.run_dir.mkdir(parents=True)
    stack.log_dir.mkdir(parents=True)
    try:
        services.start_services(
            run_dir=stack.run_dir,
            log_dir=stack.log_dir,
            venv_bin=Path(sys.executable).parent,
            kafka_bootstrap=kafka_bootstrap,
            mongodb_url=stack.mongodb_url,
            admin_key=stack.admin_key,
            executors=EXECUTORS,
            ports=stack.ports,
            extra_env=env_of(stack) | extra_env,
            timeout=120,
        )
        yield Stack(**{**stack.__dict__, "url": f"http://127.0.0.1:{stack.ports.api}"})
    finally:
        services.stop_services(stack.run_dir)
