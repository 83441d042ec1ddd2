"""``batchyard-dev`` / ``python -m devstack``: run the local stack by PID.

Commands: ``install``, ``up``, ``down``, ``status``, ``logs``, ``restart``,
``infra-env``, ``test``. Exit status 0 on success, 1 on failure (with a
one-line reason on stderr; readiness failures also print the last log lines);
``test`` passes pytest's exit status through.
Mutating commands hold ``.batchyard/run/.lock`` so two of them never race.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack import digest, kafka, probes, processes, prometheus, services, store
from devstack import install as installer
from devstack.paths import Paths, RepoRootNotFoundError

INFRA = (kafka.NAME, store.NAME)
INFRA_TIMEOUT = 60.0
# Kafka loads every partition's log before it answers: ~13,000 partitions (a dev broker that
# kept every test run's topics) took over a minute here. A broker that dies is seen at once.
KAFKA_READY_TIMEOUT = 180.0
KAFKA_STOP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
EXECUTORS_ENV = "EXECUTORS"
DEFAULT_EXECUTORS = 2


class CliError(RuntimeError):
    """A failure reported as one line and exit status 1."""


@dataclass(frozen=True)
class Stack:
    """Everything the commands need, read once from the environment."""

    paths: Paths
    kafka: kafka.KafkaSettings
    store: store.StoreSettings
    ports: services.ServicePorts = services.DEFAULT_PORTS

    @classmethod
    def from_env(cls) -> Stack:
        return cls(
            paths=Paths.discover(),
            kafka=kafka.KafkaSettings.from_env(),
            store=store.StoreSettings.from_env(),
        )

    @property
    def mongodb_url(self) -> str:
        return self.store.mongodb_url()

    def admin_key(self) -> str:
        return services.resolve_admin_key(self.paths.admin_key)


def say(message: str) -> None:
    print(message, flush=True)


@contextlib.contextmanager
def stack_lock(paths: Paths) -> Iterator[None]:
    """Exclusive lock on ``.batchyard/run/.lock`` for the duration of a command."""
    paths.run.mkdir(parents=True, exist_ok=True)
    with (paths.run / ".lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another batchyard-dev command to finish ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def default_executors() -> int:
    raw = os.environ.get(EXECUTORS_ENV, "").strip()
    return int(raw) if raw else DEFAULT_EXECUTORS


# --------------------------------------------------------------------------
# infra
# --------------------------------------------------------------------------


def _require_free(name: str, ports: Sequence[int]) -> None:
    for port in ports:
        if not probes.port_free(port):
            raise CliError(
                f"{name}: port {port} is in use by a process batchyard-dev did not start "
                "(find it with `ss -ltnp`)"
            )


@dataclass(frozen=True)
class Managed:
    """How to start, probe and stop one named process of the stack."""

    name: str
    ports: tuple[int, ...]
    start: Callable[[], processes.ProcessRecord]
    ready: Callable[[processes.ProcessRecord], bool]
    stop_timeout: float
    ready_timeout: float


def managed(stack: Stack, name: str) -> Managed:
    """The :class:`Managed` entry for ``kafka``, ``ferretdb`` or a service name."""
    paths = stack.paths
    if name == kafka.NAME:
        return Managed(
            name,
            (stack.kafka.port, stack.kafka.controller_port),
            lambda: kafka.start(paths, stack.kafka),
            lambda rec: kafka.is_ready(rec, stack.kafka),
            KAFKA_STOP_TIMEOUT,
            KAFKA_READY_TIMEOUT,
        )
    if name == store.NAME:
        return Managed(
            name,
            (stack.store.port,),
            lambda: store.start(paths, stack.store),
            lambda rec: store.is_ready(rec, stack.store),
            STOP_TIMEOUT,
            INFRA_TIMEOUT,
        )
    if not services.is_service_name(name):
        raise CliError(f"unknown process {name!r} (try `status`)")
    spec = services.spec_for(name, stack.ports)

    def start() -> processes.ProcessRecord:
        return services.start_service(
            spec,
            run_dir=paths.run,
            log_dir=paths.logs,
            venv_bin=paths.venv_bin,
            kafka_bootstrap=stack.kafka.bootstrap_servers,
            mongodb_url=stack.mongodb_url,
            admin_key=stack.admin_key() if spec.admin_api else None,
            cwd=paths.root,
        )

    return Managed(
        name,
        (spec.port,),
        start,
        lambda _rec: services.is_ready(spec, 1.0),
        STOP_TIMEOUT,
        services.DEFAULT_TIMEOUT,
    )


def ensure_started(entry: Managed, run_dir: Path) -> processes.ProcessRecord:
    """The running record of ``entry``, starting (or restarting a dead) one if needed."""
    record = processes.running_record(entry.name, run_dir)
    if record is not None:
        say(f"{entry.name}: already running (pid {record.pid})")
        return record
    if processes.has_pid_file(run_dir, entry.name):
        stale = processes.read_record(run_dir, entry.name)
        pid = stale.pid if stale else "?"
        say(f"{entry.name}: not running (stale pid {pid}), restarting")
        processes.remove_record(run_dir, entry.name)
    _require_free(entry.name, entry.ports)
    record = entry.start()
    say(f"{entry.name}: started (pid {record.pid})")
    return record


def wait_all(entries: Sequence[tuple[Managed, processes.ProcessRecord]]) -> dict[str, float]:
    """Wait for every entry's readiness check (timeout: the largest of theirs)."""
    checks = [(rec, _bind(entry, rec)) for entry, rec in entries]
    timeout = max((entry.ready_timeout for entry, _ in entries), default=0.0)
    return processes.wait_ready(checks, timeout)


def _bind(entry: Managed, record: processes.ProcessRecord) -> Callable[[], bool]:
    return lambda: entry.ready(record)


def start_infra(stack: Stack, wait: bool) -> None:
    """Start Kafka and FerretDB if needed (in parallel) and wait for both."""
    entries = [managed(stack, name) for name in INFRA]
    started = [(entry, ensure_started(entry, stack.paths.run)) for entry in entries]
    if wait:
        for name, seconds in wait_all(started).items():
            say(f"{name}: ready ({seconds:.1f}s)")


def start_service_set(stack: Stack, executors: int, wait: bool) -> None:
    """Stop surplus executors, start missing/dead services, wait for /readyz."""
    run = stack.paths.run
    surplus = [
        n for n in processes.list_names(run) if (services.executor_index(n) or 0) > executors
    ]
    if surplus:
        for name, result in processes.stop_many(surplus, run, STOP_TIMEOUT).items():
            say(f"{name}: {result.value} (surplus executor)")
    entries = [managed(stack, spec.name) for spec in services.service_specs(executors, stack.ports)]
    started = [(entry, ensure_started(entry, run)) for entry in entries]
    if wait and started:
        took = wait_all(started)
        say(f"services: all {len(started)} ready ({max(took.values()):.1f}s)")


# --------------------------------------------------------------------------
# status table
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    pid: str
    state: str
    health: str
    url: str


def known_names(stack: Stack, executors: int | None = None) -> list[str]:
    """Infra, fixed services, executors 1..N (N from env) plus any other recorded name."""
    count = default_executors() if executors is None else executors
    names = [*INFRA, *(s.name for s in services.service_specs(count, stack.ports))]
    for name in processes.list_names(stack.paths.run):
        if name not in names:
            names.append(name)
    return names


def _health(stack: Stack, name: str, record: processes.ProcessRecord | None) -> tuple[str, str]:
    meta = record.meta if record else {}
    if name == kafka.NAME:
        port = int(meta.get("port", stack.kafka.port))
        ok = probes.tcp_open(port)
        return ("tcp ok" if ok else "no answer"), f"kafka://127.0.0.1:{port}"
    if name == store.NAME:
        port = int(meta.get("port", stack.store.port))
        ok = store.ping(port)
        return ("ping ok" if ok else "no answer"), f"mongodb://127.0.0.1:{port}"
    try:
        spec = services.spec_for(name, stack.ports)
    except KeyError:
        return "-", meta.get("url", "-")
    url = meta.get("url", spec.url)
    status = probes.http_status(f"{url}readyz", timeout=1.0)
    health = "no answer" if status is None else ("ready" if status == 200 else f"HTTP {status}")
    return health, url


def status_rows(stack: Stack, names: Sequence[str]) -> list[Row]:
    rows = []
    for name in names:
        record = processes.running_record(name, stack.paths.run)
        if record is not None:
            state = "running"
        elif processes.has_pid_file(stack.paths.run, name):
            stale = processes.read_record(stack.paths.run, name)
            state = f"dead (stale pid {stale.pid if stale else '?'})"
        else:
            state = "stopped"
        health, url = _health(stack, name, record)
        if record is None and health == "no answer":
            health = "-"
        rows.append(Row(name, str(record.pid) if record else "-", state, health, url))
    return rows


def print_table(rows: Sequence[Row]) -> None:
    header = Row("NAME", "PID", "STATE", "HEALTH", "URL")
    table = [header, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in ("name", "pid", "state", "health")]
    for r in table:
        cells = (r.name, r.pid, r.state, r.health)
        say("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + r.url)


def print_infra_env(stack: Stack, export: bool = False) -> None:
    prefix = "export " if export else ""
    say(f"{prefix}KAFKA_BOOTSTRAP_SERVERS={stack.kafka.bootstrap_servers}")
    say(f"{prefix}MONGODB_URL={stack.mongodb_url}")


# --------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------


def cmd_install(stack: Stack, args: argparse.Namespace) -> int:
    del args
    started = time.monotonic()
    changed = installer.install(stack.paths, say)
    took = time.monotonic() - started
    say(f"install: {'done' if changed else 'nothing to do'} ({took:.1f}s)")
    return 0


def cmd_up(stack: Stack, args: argparse.Namespace) -> int:
    executors: int = args.executors if args.executors is not None else default_executors()
    if executors < 0:
        raise CliError("--executors must be >= 0")
    wait = not args.no_wait
    with stack_lock(stack.paths):
        installer.install(stack.paths, say)
        start_infra(stack, wait)
        if not args.infra_only:
            start_service_set(stack, executors, wait)
        if args.prometheus:
            start_prometheus(stack, executors, wait)
    say("")
    names = [*INFRA] if args.infra_only else known_names(stack, executors)
    print_table(status_rows(stack, names))
    say("")
    if args.infra_only:
        print_infra_env(stack)
    else:
        say(f"Dashboard & API: {services.spec_for('batch-api', stack.ports).url}")
        say(f"Admin API key: {stack.admin_key()}")
    if args.prometheus:
        say(f"Prometheus: http://127.0.0.1:{prometheus.port()}/ (alerts at /alerts)")
    return 0


def start_prometheus(stack: Stack, executors: int, wait: bool) -> None:
    """Prometheus scraping the service set (restarted so its targets match `executors`)."""
    listen = prometheus.port()
    entry = Managed(
        prometheus.NAME,
        (listen,),
        lambda: prometheus.start(stack.paths, executors, stack.ports),
        lambda _rec: prometheus.is_ready(listen),
        STOP_TIMEOUT,
        INFRA_TIMEOUT,
    )
    processes.stop(prometheus.NAME, stack.paths.run, STOP_TIMEOUT)
    record = ensure_started(entry, stack.paths.run)
    if wait:
        took = wait_all([(entry, record)])
        say(f"prometheus: ready ({took[prometheus.NAME]:.1f}s)")


def cmd_down(stack: Stack, args: argparse.Namespace) -> int:
    del args
    run = stack.paths.run
    with stack_lock(stack.paths):
        groups: list[tuple[list[str], float]] = [
            ([n for n in processes.list_names(run) if n not in INFRA], STOP_TIMEOUT),
            ([store.NAME], STOP_TIMEOUT),
            ([kafka.NAME], KAFKA_STOP_TIMEOUT),
        ]
        stopped = 0
        for names, timeout in groups:
            pids = {n: processes.read_record(run, n) for n in names}
            for name, result in processes.stop_many(names, run, timeout).items():
                if result is processes.StopResult.NOT_RUNNING:
                    continue
                rec = pids.get(name)
                pid = f" (pid {rec.pid})" if rec else ""
                say(f"{name}{pid}: {result.value}")
                stopped += result in (processes.StopResult.TERMINATED, processes.StopResult.KILLED)
    say(f"down: stopped {stopped} process(es)" if stopped else "down: nothing was running")
    return 0


def cmd_status(stack: Stack, args: argparse.Namespace) -> int:
    del args
    print_table(status_rows(stack, known_names(stack)))
    return 0


def _log_path(stack: Stack, name: str) -> Path:
    path = stack.paths.log_file(name)
    if not path.exists():
        raise CliError(f"no log for {name!r} at {path}")
    return path


def cmd_logs(stack: Stack, args: argparse.Namespace) -> int:
    path = _log_path(stack, args.name)
    for line in processes.tail_lines(path, args.lines):
        say(line)
    if not args.follow:
        return 0
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                chunk = fh.read()
                if chunk:
                    sys.stdout.write(chunk.decode("utf-8", "replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.5)
    return 0


def cmd_restart(stack: Stack, args: argparse.Namespace) -> int:
    entry = managed(stack, args.name)
    run = stack.paths.run
    with stack_lock(stack.paths):
        result = processes.stop(entry.name, run, entry.stop_timeout)
        say(f"{entry.name}: {result.value}")
        _require_free(entry.name, entry.ports)
        record = entry.start()
        say(f"{entry.name}: started (pid {record.pid})")
        if not args.no_wait:
            took = wait_all([(entry, record)])
            say(f"{entry.name}: ready ({took[entry.name]:.1f}s)")
    return 0


def cmd_test(stack: Stack, args: argparse.Namespace) -> int:
    """Run pytest against the dev infra; returns pytest's own exit status.

    Uses ``KAFKA_BOOTSTRAP_SERVERS``/``MONGODB_URL`` from the caller if both are
    set; otherwise installs and starts Kafka + FerretDB (if not already
    running), exports their addresses, and afterwards stops whatever this
    command itself started (unless ``--keep-infra``), so CI leaves nothing behind.
    """
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    argv = [sys.executable, "-m", "pytest", *pytest_args]
    began = time.time()
    code = with_infra(stack, argv, keep_infra=args.keep_infra, label="test")
    if code not in (0, 5) and (found := digest.digest(stack.paths.root / "artifacts", began)):
        say("test: failed; warnings and errors in the logs of the stacks the tests started:")
        print(found, flush=True)
    return code


def cmd_run(stack: Stack, args: argparse.Namespace) -> int:
    """Run a command against the dev infra (e.g. a benchmark), like ``test`` runs pytest."""
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise CliError("run: give the command after --")
    return with_infra(stack, argv, keep_infra=args.keep_infra, label="run")


def with_infra(stack: Stack, argv: list[str], *, keep_infra: bool, label: str) -> int:
    """Runs ``argv`` with Kafka + FerretDB (started here unless the caller's environment
    names them); stops what it started; returns the command's exit status."""
    env = dict(os.environ)
    started: list[str] = []
    external = bool(env.get("KAFKA_BOOTSTRAP_SERVERS") and env.get("MONGODB_URL"))
    if external:
        say(f"{label}: using KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL from the environment")
    else:
        with stack_lock(stack.paths):
            installer.install(stack.paths, say)
            started = [n for n in INFRA if not processes.is_running(n, stack.paths.run)]
            start_infra(stack, wait=True)
        env["KAFKA_BOOTSTRAP_SERVERS"] = stack.kafka.bootstrap_servers
        env["MONGODB_URL"] = stack.mongodb_url
    say(f"{label}: {' '.join(argv)}")
    try:
        return subprocess.run(argv, cwd=stack.paths.root, env=env, check=False).returncode
    finally:
        if started and not keep_infra:
            with stack_lock(stack.paths):
                for name in reversed(started):
                    timeout = KAFKA_STOP_TIMEOUT if name == kafka.NAME else STOP_TIMEOUT
                    say(f"{label}: {name} {processes.stop(name, stack.paths.run, timeout).value}")


def cmd_infra_env(stack: Stack, args: argparse.Namespace) -> int:
    print_infra_env(stack, export=args.export)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchyard-dev",
        description="Run Batchyard's local dev stack (Kafka, FerretDB, services).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("install", help="fetch Kafka jars and build FerretDB into .cache/")
    up = sub.add_parser("up", help="install, start what is not running, wait until ready")
    up.add_argument(
        "--executors", type=int, default=None, help="executor count (env EXECUTORS, default 2)"
    )
    up.add_argument("--infra-only", action="store_true", help="start only Kafka and FerretDB")
    up.add_argument("--no-wait", action="store_true", help="do not wait for readiness")
    up.add_argument(
        "--prometheus", action="store_true", help="also run Prometheus scraping every service"
    )
    sub.add_parser("down", help="stop services, then FerretDB and Kafka")
    sub.add_parser("status", help="table of every known process")
    logs = sub.add_parser("logs", help="tail a process log")
    logs.add_argument("name")
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.add_argument("-f", "--follow", action="store_true")
    restart = sub.add_parser("restart", help="stop and start one process")
    restart.add_argument("name")
    restart.add_argument("--no-wait", action="store_true")
    test = sub.add_parser(
        "test", help="start Kafka+FerretDB if needed, run pytest ARGS, stop what it started"
    )
    test.add_argument("--keep-infra", action="store_true", help="leave infra it started running")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then pytest arguments")
    run = sub.add_parser(
        "run", help="start Kafka+FerretDB if needed, run a command, stop what it started"
    )
    run.add_argument("--keep-infra", action="store_true", help="leave infra it started running")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the command")
    env = sub.add_parser("infra-env", help="print KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL lines")
    env.add_argument("--export", action="store_true", help="prefix lines with `export `")
    return parser


COMMANDS: dict[str, Callable[[Stack, argparse.Namespace], int]] = {
    "install": cmd_install,
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "logs": cmd_logs,
    "restart": cmd_restart,
    "test": cmd_test,
    "run": cmd_run,
    "infra-env": cmd_infra_env,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        stack = Stack.from_env()
        return COMMANDS[args.command](stack, args)
    except processes.NotReadyError as exc:
        print(f"--- last {len(exc.tail)} lines of {exc.log} ---", file=sys.stderr)
        for line in exc.tail:
            print(line, file=sys.stderr)
        print(f"batchyard-dev: error: {exc}", file=sys.stderr)
    except (
        CliError,
        installer.MissingToolError,
        installer.InstallError,
        RepoRootNotFoundError,
        processes.AlreadyRunningError,
        FileNotFoundError,
        ValueError,
        RuntimeError,
    ) as exc:
        reason = str(exc).strip().splitlines()
        print(
            f"batchyard-dev: error: {reason[0] if reason else type(exc).__name__}", file=sys.stderr
        )
        for extra in reason[1:]:
            print(f"  {extra}", file=sys.stderr)
    except KeyboardInterrupt:
        print("batchyard-dev: interrupted", file=sys.stderr)
    return 1
