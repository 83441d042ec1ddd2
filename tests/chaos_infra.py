"""A private Kafka and FerretDB for chaos tests that restart them.

Restarting the test run's shared servers would disturb every other test; these run from the
repo's `.cache/` (jars, binary) with their own ports and a state folder under `artifacts/`,
and are stopped by PID when the test ends."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from devstack import kafka, probes, processes, store
from devstack.paths import Paths

READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class PrivatePaths(Paths):
    """The repo's caches, with runtime state (data, logs, PID records) in `state_dir`."""

    state_dir: Path = Path()

    @property
    def state(self) -> Path:
        return self.state_dir


def _free_pair() -> int:
    """A port `p` with `p + 1` also free (Kafka's controller listens there)."""
    for _ in range(200):
        port = probes.free_port()
        if probes.port_free(port + 1):
            return port
    raise RuntimeError("no two adjacent free ports")


class PrivateInfra:
    def __init__(self, repo: Path, state_dir: Path) -> None:
        self.paths = PrivatePaths(root=repo, state_dir=state_dir)
        self.paths.ensure()
        self.kafka = kafka.KafkaSettings(port=_free_pair())
        self.store = store.StoreSettings(port=probes.free_port(), debug_port=None)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers

    def mongodb_url(self, database: str) -> str:
        return self.store.mongodb_url(database)

    def start_kafka(self) -> None:
        record = kafka.start(self.paths, self.kafka)
        processes.wait_ready(
            [(record, lambda: kafka.is_ready(record, self.kafka))], READY_TIMEOUT_S
        )

    def start_store(self) -> None:
        record = store.start(self.paths, self.store)
        processes.wait_ready(
            [(record, lambda: store.is_ready(record, self.store))], READY_TIMEOUT_S
        )

    def start(self) -> None:
        self.start_store()
        self.start_kafka()

    def restart(self, name: str, down_s: float = 2.0) -> None:
        """Stops `kafka` or `ferretdb` (SIGTERM, SIGKILL after 20 s), keeps it down for
        `down_s`, and starts it again on the same port and data."""
        processes.stop(name, self.paths.run, timeout=20)
        processes.remove_record(self.paths.run, name)
        time.sleep(down_s)
        if name == kafka.NAME:
            self.start_kafka()
        else:
            self.start_store()

    def stop(self) -> None:
        processes.stop_many([kafka.NAME, store.NAME], self.paths.run, timeout=20)
