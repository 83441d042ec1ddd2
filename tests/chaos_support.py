"""Helpers of the chaos tests: kill a service by PID and start it again."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from stack_support import Stack

from devstack import processes, services

# Short job leases and scheduler lease, so that failures heal within seconds.
CHAOS_ENV = {"BATCHYARD_SCHEDULER_LEASE_S": "3", "BATCHYARD_SCHEDULER_LEADER_TTL_S": "4"}


def env_of(stack: Stack) -> dict[str, str]:
    return {"BATCHYARD_TOPIC_PREFIX": stack.prefix, **CHAOS_ENV}


def kill_9(stack: Stack, name: str) -> None:
    record = processes.read_record(stack.run_dir, name)
    assert record is not None
    assert processes.verify(record)
    os.kill(record.pid, signal.SIGKILL)


def restart(
    stack: Stack, name: str, kafka_bootstrap: str, extra_env: Mapping[str, str] | None = None
) -> None:
    for _ in range(50):
        if not processes.is_running(name, stack.run_dir):
            break
        time.sleep(0.1)
    processes.remove_record(stack.run_dir, name)
    services.start_service(
        services.spec_for(name, stack.ports),
        run_dir=stack.run_dir,
        log_dir=stack.log_dir,
        venv_bin=Path(sys.executable).parent,
        kafka_bootstrap=kafka_bootstrap,
        mongodb_url=stack.mongodb_url,
        admin_key=None,
        extra_env={**env_of(stack), **(extra_env or {})},
    )
