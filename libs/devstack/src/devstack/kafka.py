"""Single-node KRaft Kafka broker (broker+controller in one JVM).

Contract:
- :func:`render_server_properties` is pure: the same settings give the same text.
- :func:`prepare` writes ``.batchyard/data/kafka/{server.properties,log4j2.xml}``
  (every start, so port changes apply) and formats the storage once: it skips
  formatting when ``logs/meta.properties`` exists. The quorum is static
  (``controller.quorum.voters``), so no listener address is baked into the
  formatted data and the ports may change between runs.
- :func:`start` launches ``java ... kafka.Kafka server.properties`` as the
  tracked process ``kafka``; :func:`is_ready` is "TCP connect works AND the log
  written since that start contains ``Kafka Server started``".
"""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack import probes, processes
from devstack.install import find_java
from devstack.paths import Paths

NAME = "kafka"
DEFAULT_PORT = 9092
PORT_ENV = "BATCHYARD_KAFKA_PORT"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
STARTED_MARKER = "Kafka Server started"
JVM_OPTS = (
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

LOG4J2_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by batchyard-dev. Broker logs go to stdout, which is the log file. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <!-- The full config dumps are ~1800 lines per start; server.properties has ours. -->
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.authorizer.logger" level="WARN"/>
    <Root level="INFO">
      <AppenderRef ref="STDOUT"/>
    </Root>
  </Loggers>
</Configuration>
"""


@dataclass(frozen=True)
class KafkaSettings:
    """Ports and host of the dev broker. The controller listens on ``port + 1``."""

    port: int = DEFAULT_PORT
    host: str = probes.LOOPBACK

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings:
        """Read ``BATCHYARD_KAFKA_PORT`` (default 9092)."""
        env = os.environ if environ is None else environ
        return cls(port=int(env.get(PORT_ENV) or DEFAULT_PORT))


def render_server_properties(settings: KafkaSettings, log_dir: Path) -> str:
    """``server.properties`` for a single-node broker+controller; ``log_dir`` must be absolute."""
    if not log_dir.is_absolute():
        raise ValueError(f"log.dirs must be absolute, got {log_dir}")
    host = settings.host
    props: list[tuple[str, str]] = [
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.voters", f"1@{host}:{settings.controller_port}"),
        (
            "listeners",
            f"PLAINTEXT://{host}:{settings.port},CONTROLLER://{host}:{settings.controller_port}",
        ),
        ("advertised.listeners", f"PLAINTEXT://{host}:{settings.port}"),
        ("controller.listener.names", "CONTROLLER"),
        ("inter.broker.listener.name", "PLAINTEXT"),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ("log.dirs", str(log_dir)),
        ("num.partitions", "6"),
        ("default.replication.factor", "1"),
        ("min.insync.replicas", "1"),
        ("auto.create.topics.enable", "true"),
        # 6 instead of 50: a single dev broker gains nothing from 50 partitions per
        # internal topic, and loading 100 of them dominated warm restarts and logs.
        ("offsets.topic.num.partitions", "6"),
        ("transaction.state.log.num.partitions", "6"),
        ("share.coordinator.state.topic.num.partitions", "6"),
        ("offsets.topic.replication.factor", "1"),
        ("transaction.state.log.replication.factor", "1"),
        ("transaction.state.log.min.isr", "1"),
        ("share.coordinator.state.topic.replication.factor", "1"),
        ("share.coordinator.state.topic.min.isr", "1"),
        ("group.initial.rebalance.delay.ms", "0"),
        ("log.retention.hours", "168"),
        ("num.network.threads", "2"),
        ("num.io.threads", "4"),
    ]
    lines = ["# Written by batchyard-dev on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in props]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A cluster id in Kafka's ``Uuid`` form (22 chars of URL-safe base64).

    Same shape as ``StorageTool random-uuid`` without starting a JVM; like
    Kafka, ids starting with ``-`` are avoided.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def java_program() -> str:
    """``java`` from PATH, ``$JAVA_HOME`` or ``/usr/bin``; raises MissingToolError."""
    return find_java()


def classpath(paths: Paths) -> str:
    """The JVM classpath wildcard for the installed broker jars."""
    return f"{paths.kafka_lib}/*"


def server_properties_path(paths: Paths) -> Path:
    return paths.kafka_data / "server.properties"


def log4j_path(paths: Paths) -> Path:
    return paths.kafka_data / "log4j2.xml"


def storage_dir(paths: Paths) -> Path:
    return paths.kafka_data / "logs"


def prepare(paths: Paths, settings: KafkaSettings, java: str) -> bool:
    """Write the config files and format storage if needed; True if it formatted now."""
    paths.kafka_data.mkdir(parents=True, exist_ok=True)
    log_dir = storage_dir(paths).absolute()
    server_properties_path(paths).write_text(
        render_server_properties(settings, log_dir), encoding="utf-8"
    )
    log4j_path(paths).write_text(LOG4J2_XML, encoding="utf-8")
    if (log_dir / "meta.properties").exists():
        return False
    argv = [
        java,
        f"-Dlog4j2.configurationFile={log4j_path(paths)}",
        "-cp",
        classpath(paths),
        STORAGE_TOOL,
        "format",
        "-t",
        new_cluster_id(),
        "-c",
        str(server_properties_path(paths)),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"kafka storage format failed (exit {done.returncode}):\n"
            + "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        )
    return True


def argv(paths: Paths, java: str) -> list[str]:
    """The broker command line."""
    return [
        java,
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={log4j_path(paths)}",
        f"-Dkafka.logs.dir={paths.logs}",
        "-cp",
        classpath(paths),
        MAIN_CLASS,
        str(server_properties_path(paths)),
    ]


def start(paths: Paths, settings: KafkaSettings) -> processes.ProcessRecord:
    """Prepare and launch the broker as tracked process ``kafka`` (does not wait)."""
    if not any(paths.kafka_lib.glob("kafka_2.13-*.jar")):
        raise FileNotFoundError(f"no Kafka jars in {paths.kafka_lib}: run `batchyard-dev install`")
    java = java_program()
    prepare(paths, settings, java)
    return processes.start_process(
        NAME,
        argv(paths, java),
        None,
        paths.log_file(NAME),
        run_dir=paths.run,
        cwd=paths.root,
        meta={"port": str(settings.port), "url": f"kafka://{settings.bootstrap_servers}"},
    )


def is_ready(record: processes.ProcessRecord, settings: KafkaSettings) -> bool:
    """TCP accepts on the client port and the log shows the server started."""
    return probes.tcp_open(settings.port, settings.host) and processes.log_contains(
        Path(record.log), STARTED_MARKER, record.log_offset
    )
