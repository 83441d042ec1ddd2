"""The five Batchyard services: table, environment, start/stop, readiness.

Contract:
- :func:`service_specs` is pure: ``batch-api``, ``scheduler``, ``rollback``,
  ``reporter``, then ``executor-1..N``, each with its console script, port and
  instance id (``executor-<i>`` for executors, the name otherwise).
- Each service is started as ``<venv_bin>/<script>`` with the caller's
  environment plus ``KAFKA_BOOTSTRAP_SERVERS``, ``MONGODB_URL``,
  ``BATCHYARD_HTTP_PORT``, ``BATCHYARD_INSTANCE_ID``, ``PYTHONUNBUFFERED=1``,
  ``BATCHYARD_ADMIN_KEY`` (batch-api only) and then ``extra_env`` on top.
- Ready means ``GET http://127.0.0.1:<port>/readyz`` answers 200.
- Ports, run dir, log dir and env are parameters, so tests can run an isolated
  copy (own ports, own ``run_dir``, ``BATCHYARD_TOPIC_PREFIX``, another
  database) against the same Kafka/FerretDB and stop it by PID afterwards::

      ports = ServicePorts.pick_free(executors=2)
      records = start_services(run_dir=tmp / "run", log_dir=tmp / "logs",
                               venv_bin=repo / ".venv/bin", ports=ports,
                               kafka_bootstrap="127.0.0.1:9092",
                               mongodb_url="mongodb://127.0.0.1:27017/e2e_x",
                               admin_key="bya_test", extra_env={"BATCHYARD_TOPIC_PREFIX": "e2e_x."})
      ...
      stop_services(tmp / "run")
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devstack import probes, processes

ADMIN_KEY_ENV = "BATCHYARD_ADMIN_KEY"
ADMIN_KEY_PREFIX = "bya_"
SIGNING_KEY_ENV = "BATCHYARD_WEBHOOK_SIGNING_KEY"
EXECUTOR_RE = re.compile(r"^executor-([1-9][0-9]*)$")
DEFAULT_TIMEOUT = 90.0


@dataclass(frozen=True)
class ServiceSpec:
    """One service instance."""

    name: str
    script: str
    port: int
    instance_id: str
    admin_api: bool = False
    host: str = probes.LOOPBACK

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def readyz(self) -> str:
        return f"{self.url}readyz"

    @property
    def healthz(self) -> str:
        return f"{self.url}healthz"


@dataclass(frozen=True)
class ServicePorts:
    """HTTP ports. Executor ``i`` (1-based) uses ``executor_ports[i-1]`` or ``executor_base + i``.

    Defaults: api 8000, scheduler 8001, rollback 8002, reporter 8003, executors 8011+.
    """

    api: int = 8000
    scheduler: int = 8001
    rollback: int = 8002
    reporter: int = 8003
    executor_base: int = 8010
    executor_ports: tuple[int, ...] = field(default=())

    def executor(self, index: int) -> int:
        if index < 1:
            raise ValueError("executor index is 1-based")
        if index <= len(self.executor_ports):
            return self.executor_ports[index - 1]
        return self.executor_base + index

    @classmethod
    def pick_free(cls, executors: int) -> ServicePorts:
        """Currently-free ephemeral ports for every service (for isolated test stacks)."""
        chosen: set[int] = set()

        def one() -> int:
            while True:
                port = probes.free_port()
                if port not in chosen:
                    chosen.add(port)
                    return port

        return cls(
            api=one(),
            scheduler=one(),
            rollback=one(),
            reporter=one(),
            executor_ports=tuple(one() for _ in range(executors)),
        )


DEFAULT_PORTS = ServicePorts()

_FIXED: tuple[tuple[str, str, str], ...] = (
    ("batch-api", "batchyard-api", "api"),
    ("scheduler", "batchyard-scheduler", "scheduler"),
    ("rollback", "batchyard-rollback", "rollback"),
    ("reporter", "batchyard-reporter", "reporter"),
)
EXECUTOR_SCRIPT = "batchyard-executor"
FIXED_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _FIXED)


def executor_name(index: int) -> str:
    return f"executor-{index}"


def executor_index(name: str) -> int | None:
    """``3`` for ``executor-3``; None for anything else."""
    match = EXECUTOR_RE.match(name)
    return int(match.group(1)) if match else None


def is_service_name(name: str) -> bool:
    return name in FIXED_NAMES or executor_index(name) is not None


def service_specs(executors: int, ports: ServicePorts = DEFAULT_PORTS) -> list[ServiceSpec]:
    """The service table in start order."""
    if executors < 0:
        raise ValueError("executors must be >= 0")
    specs = [
        ServiceSpec(
            name=name,
            script=script,
            port=getattr(ports, attr),
            instance_id=name,
            admin_api=name == "batch-api",
        )
        for name, script, attr in _FIXED
    ]
    specs += [
        ServiceSpec(
            name=executor_name(i),
            script=EXECUTOR_SCRIPT,
            port=ports.executor(i),
            instance_id=executor_name(i),
        )
        for i in range(1, executors + 1)
    ]
    return specs


def spec_for(name: str, ports: ServicePorts = DEFAULT_PORTS) -> ServiceSpec:
    """The spec of one named service (any executor index); KeyError if unknown."""
    index = executor_index(name)
    if index is not None:
        return service_specs(index, ports)[-1]
    for spec in service_specs(0, ports):
        if spec.name == name:
            return spec
    raise KeyError(name)


def service_env(
    spec: ServiceSpec,
    *,
    kafka_bootstrap: str,
    mongodb_url: str,
    admin_key: str | None,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment variables to overlay for ``spec`` (not including os.environ)."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongodb_url,
        "BATCHYARD_HTTP_PORT": str(spec.port),
        "BATCHYARD_INSTANCE_ID": spec.instance_id,
        "PYTHONUNBUFFERED": "1",
    }
    if spec.admin_api and admin_key:
        env[ADMIN_KEY_ENV] = admin_key
    if extra_env:
        env.update(extra_env)
    return env


def resolve_admin_key(key_file: Path, environ: Mapping[str, str] | None = None) -> str:
    """``$BATCHYARD_ADMIN_KEY``, else the saved key, else a new ``bya_...`` key saved 0600."""
    return resolve_secret(key_file, ADMIN_KEY_ENV, ADMIN_KEY_PREFIX, environ)


def resolve_secret(
    key_file: Path, env_name: str, prefix: str, environ: Mapping[str, str] | None = None
) -> str:
    """``$<env_name>``, else the secret saved in ``key_file``, else a new one saved 0600."""
    env = os.environ if environ is None else environ
    from_env = env.get(env_name, "").strip()
    if from_env:
        return from_env
    try:
        saved = key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        saved = ""
    if saved:
        return saved
    key = prefix + secrets.token_urlsafe(32)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    key_file.chmod(0o600)
    return key


def script_path(venv_bin: Path, spec: ServiceSpec) -> Path:
    """``<venv_bin>/<script>``; FileNotFoundError with a hint if it is not installed."""
    path = venv_bin / spec.script
    if not path.exists():
        raise FileNotFoundError(
            f"console script {path} not found: install the services into the venv first"
        )
    return path


def start_service(
    spec: ServiceSpec,
    *,
    run_dir: Path,
    log_dir: Path,
    venv_bin: Path,
    kafka_bootstrap: str,
    mongodb_url: str,
    admin_key: str | None,
    extra_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> processes.ProcessRecord:
    """Start one service (does not wait). Fails if its port is already taken."""
    program = script_path(venv_bin, spec)
    if not probes.port_free(spec.port, spec.host):
        raise RuntimeError(f"{spec.name}: port {spec.port} is already in use by another process")
    env = service_env(
        spec,
        kafka_bootstrap=kafka_bootstrap,
        mongodb_url=mongodb_url,
        admin_key=admin_key,
        extra_env=extra_env,
    )
    if SIGNING_KEY_ENV not in env:
        # batch-api and the reporter must share it: one per run directory unless given
        env[SIGNING_KEY_ENV] = resolve_secret(
            run_dir / "webhook-signing.key", SIGNING_KEY_ENV, "whk_"
        )
    return processes.start_process(
        spec.name,
        [str(program)],
        env,
        log_dir / f"{spec.name}.log",
        run_dir=run_dir,
        cwd=cwd,
        meta={
            "kind": "service",
            "port": str(spec.port),
            "url": spec.url,
            "instance_id": spec.instance_id,
        },
    )


def is_ready(spec: ServiceSpec, timeout: float = 2.0) -> bool:
    """``GET /readyz`` answers 200."""
    return probes.http_status(spec.readyz, timeout) == 200


def wait_ready(
    pairs: Sequence[tuple[ServiceSpec, processes.ProcessRecord]],
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, float]:
    """Wait for every ``/readyz``; raises processes.NotReadyError (with log tail)."""
    checks = [(record, _ready_check(spec)) for spec, record in pairs]
    return processes.wait_ready(checks, timeout)


def _ready_check(spec: ServiceSpec) -> Callable[[], bool]:
    return lambda: is_ready(spec, timeout=1.0)


def start_services(
    *,
    run_dir: Path,
    log_dir: Path,
    venv_bin: Path,
    kafka_bootstrap: str,
    mongodb_url: str,
    admin_key: str | None,
    executors: int = 2,
    ports: ServicePorts = DEFAULT_PORTS,
    extra_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    wait: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[processes.ProcessRecord]:
    """Start every service of the table that is not already running in ``run_dir``.

    Already-running ones are left alone and their records returned too. With
    ``wait`` it blocks until all ``/readyz`` are 200 or raises NotReadyError
    (the started processes are left running; call :func:`stop_services`).
    """
    pairs: list[tuple[ServiceSpec, processes.ProcessRecord]] = []
    for spec in service_specs(executors, ports):
        record = processes.running_record(spec.name, run_dir)
        if record is None:
            record = start_service(
                spec,
                run_dir=run_dir,
                log_dir=log_dir,
                venv_bin=venv_bin,
                kafka_bootstrap=kafka_bootstrap,
                mongodb_url=mongodb_url,
                admin_key=admin_key,
                extra_env=extra_env,
                cwd=cwd,
            )
        pairs.append((spec, record))
    if wait:
        wait_ready(pairs, timeout)
    return [record for _, record in pairs]


def stop_services(
    run_dir: Path, names: Sequence[str] | None = None, timeout: float = 10.0
) -> dict[str, processes.StopResult]:
    """Stop the named services (default: every service recorded in ``run_dir``)."""
    if names is None:
        names = [n for n in processes.list_names(run_dir) if is_service_name(n)]
    return processes.stop_many(list(names), run_dir, timeout)
