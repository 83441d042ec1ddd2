"""Detached processes tracked by PID file, and only ever signalled when verified.

Contract:
- :func:`start_process` starts ``argv`` in a new session (so it is its own
  process-group leader and survives the CLI exiting), with stdin from
  ``/dev/null`` and stdout+stderr appended to ``log``. It writes
  ``<run_dir>/<name>.pid`` (the bare PID) and ``<run_dir>/<name>.json`` (a
  :class:`ProcessRecord`: PID, argv, start time, kernel start ticks, log file
  and offset, free-form ``meta``).
- A record is *verified* when the PID is alive (not a zombie), its kernel start
  time equals the recorded one, and ``/proc/<pid>/cmdline`` matches the argv we
  started (see :func:`cmdline_matches`). :func:`is_running` means verified.
- :func:`stop` signals only verified records: SIGTERM to the process group,
  wait up to ``timeout`` s, then SIGKILL; the record is removed in every case.
  An unverified (stale or recycled) PID is never signalled.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC = Path("/proc")


class AlreadyRunningError(RuntimeError):
    """A verified process with that name is already running."""


class StopResult(enum.Enum):
    """What :func:`stop` did."""

    NOT_RUNNING = "not running"
    STALE = "stale pid file removed"
    TERMINATED = "stopped"
    KILLED = "killed after timeout"


@dataclass(frozen=True)
class ProcessRecord:
    """What we know about a process we started."""

    name: str
    pid: int
    argv: tuple[str, ...]
    started_at: float
    start_ticks: int | None = None
    log: str = ""
    log_offset: int = 0
    meta: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise (stable key order, one line)."""
        return json.dumps(
            {
                "name": self.name,
                "pid": self.pid,
                "argv": list(self.argv),
                "started_at": self.started_at,
                "start_ticks": self.start_ticks,
                "log": self.log,
                "log_offset": self.log_offset,
                "meta": dict(self.meta),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> ProcessRecord:
        """Parse :meth:`to_json` output; raises ``ValueError`` on bad input."""
        raw: Any = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("process record is not a JSON object")
        try:
            ticks = raw.get("start_ticks")
            return cls(
                name=str(raw["name"]),
                pid=int(raw["pid"]),
                argv=tuple(str(a) for a in raw["argv"]),
                started_at=float(raw["started_at"]),
                start_ticks=None if ticks is None else int(ticks),
                log=str(raw.get("log", "")),
                log_offset=int(raw.get("log_offset", 0)),
                meta={str(k): str(v) for k, v in dict(raw.get("meta", {})).items()},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad process record: {exc}") from exc


# --------------------------------------------------------------------------
# pid files
# --------------------------------------------------------------------------


def pid_file(run_dir: Path, name: str) -> Path:
    """``<run_dir>/<name>.pid``: the bare PID."""
    return run_dir / f"{name}.pid"


def record_file(run_dir: Path, name: str) -> Path:
    """``<run_dir>/<name>.json``: the full :class:`ProcessRecord`."""
    return run_dir / f"{name}.json"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_record(run_dir: Path, record: ProcessRecord) -> None:
    """Write the sidecar JSON, then the pid file (both atomically)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(record_file(run_dir, record.name), record.to_json() + "\n")
    _atomic_write(pid_file(run_dir, record.name), f"{record.pid}\n")


def read_record(run_dir: Path, name: str) -> ProcessRecord | None:
    """The record for ``name``, or None if absent, unreadable or inconsistent.

    Inconsistent means the pid file and the JSON sidecar disagree on the PID.
    """
    try:
        pid_text = pid_file(run_dir, name).read_text(encoding="utf-8").strip()
        pid = int(pid_text)
        record = ProcessRecord.from_json(record_file(run_dir, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.pid != pid or record.name != name or pid <= 0:
        return None
    return record


def has_pid_file(run_dir: Path, name: str) -> bool:
    """Whether ``<name>.pid`` exists (verified or not)."""
    return pid_file(run_dir, name).exists()


def remove_record(run_dir: Path, name: str) -> None:
    """Delete the pid file and sidecar, if present."""
    for path in (pid_file(run_dir, name), record_file(run_dir, name)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def list_names(run_dir: Path) -> list[str]:
    """Names that have a pid file in ``run_dir``, sorted."""
    if not run_dir.is_dir():
        return []
    return sorted(p.stem for p in run_dir.glob("*.pid"))


# --------------------------------------------------------------------------
# /proc inspection
# --------------------------------------------------------------------------


def read_cmdline(pid: int, proc: Path = PROC) -> list[str] | None:
    """``/proc/<pid>/cmdline`` as a list, or None if unreadable/gone/empty."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # zombie or kernel thread
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "surrogateescape") for p in parts]


def _stat_fields(pid: int, proc: Path) -> list[str] | None:
    try:
        raw = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # "pid (comm) state ppid ..." -- comm may contain spaces and parentheses.
    close = raw.rfind(")")
    if close < 0:
        return None
    return raw[close + 1 :].split()


def read_state(pid: int, proc: Path = PROC) -> str | None:
    """Single-letter process state (``R``, ``S``, ``Z``, ...) or None if gone."""
    fields = _stat_fields(pid, proc)
    return fields[0] if fields else None


def read_start_ticks(pid: int, proc: Path = PROC) -> int | None:
    """Kernel start time of ``pid`` in clock ticks since boot (stat field 22)."""
    fields = _stat_fields(pid, proc)
    if not fields or len(fields) < 20:
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def pid_alive(pid: int, proc: Path = PROC) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = read_state(pid, proc)
    return state is not None and state not in ("Z", "X")


def cmdline_matches(expected: Sequence[str], actual: Sequence[str] | None) -> bool:
    """Whether a live ``actual`` cmdline is the program we started as ``expected``.

    Exact equality matches. Otherwise the trailing arguments must equal
    ``expected[1:]`` and the word before them must be ``expected[0]`` or have
    the same basename. This covers ``#!`` scripts, whose cmdline becomes
    ``[interpreter, *interp_opts, script, *args]``, and launchers that put a
    different spelling of the program path in ``argv[0]``.
    """
    if not expected or not actual:
        return False
    exp = list(expected)
    act = list(actual)
    if act == exp:
        return True
    tail = exp[1:]
    if len(act) < len(exp):
        return False
    if tail and act[len(act) - len(tail) :] != tail:
        return False
    program = act[len(act) - len(tail) - 1]
    return program == exp[0] or os.path.basename(program) == os.path.basename(exp[0])


def verify(record: ProcessRecord, proc: Path = PROC) -> bool:
    """True if ``record.pid`` is alive and is still the process we started.

    A PID together with its start time names one process for the life of the machine, so
    when the start time was recorded it decides; the command line is the fallback (it was
    seen to misjudge a live service once, leaving it running after ``down``)."""
    if not pid_alive(record.pid, proc):
        return False
    if record.start_ticks is not None:
        return read_start_ticks(record.pid, proc) == record.start_ticks
    return cmdline_matches(record.argv, read_cmdline(record.pid, proc))


def running_record(name: str, run_dir: Path) -> ProcessRecord | None:
    """The verified record for ``name``, or None."""
    record = read_record(run_dir, name)
    if record is None or not verify(record):
        return None
    return record


def is_running(name: str, run_dir: Path) -> bool:
    """Pid file exists, PID alive, and cmdline/start time match what we started."""
    return running_record(name, run_dir) is not None


# --------------------------------------------------------------------------
# start / stop
# --------------------------------------------------------------------------


def resolve_program(program: str) -> str:
    """Absolute path of ``program`` (searched on PATH if it has no slash)."""
    if os.sep in program:
        path = Path(program)
        if not path.exists():
            raise FileNotFoundError(f"{program} does not exist")
        return str(path.absolute())
    found = shutil.which(program)
    if found is None:
        raise FileNotFoundError(f"{program} not found on PATH")
    return found


def start_process(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    log: Path,
    *,
    run_dir: Path,
    cwd: Path | None = None,
    meta: Mapping[str, str] | None = None,
    inherit_env: bool = True,
) -> ProcessRecord:
    """Start ``argv`` detached and record it as ``name`` in ``run_dir``.

    ``env`` is overlaid on ``os.environ`` (or used alone if ``inherit_env`` is
    False). ``argv[0]`` is resolved to an absolute path first. Raises
    :class:`AlreadyRunningError` if ``name`` is already running; a stale record
    is replaced. Returns once the program has been exec'd (not once it is ready).
    """
    if is_running(name, run_dir):
        raise AlreadyRunningError(f"{name} is already running")
    remove_record(run_dir, name)
    full_argv = [resolve_program(argv[0]), *argv[1:]]
    child_env = dict(os.environ) if inherit_env else {}
    if env:
        child_env.update(env)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"----- {stamp} batchyard-dev starting {name}: {full_argv}\n".encode())
        out.flush()
        offset = out.tell()
        # Popen returns only after exec succeeded (or raises), so the cmdline
        # read below is already the new program's.
        proc = subprocess.Popen(
            full_argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    record = ProcessRecord(
        name=name,
        pid=proc.pid,
        argv=tuple(full_argv),
        started_at=time.time(),
        start_ticks=read_start_ticks(proc.pid),
        log=str(log),
        log_offset=offset,
        meta=dict(meta or {}),
    )
    write_record(run_dir, record)
    return record


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own child (no-op otherwise)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(record: ProcessRecord, sig: signal.Signals, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(record.pid, sig)
        else:
            os.kill(record.pid, sig)


def _wait_gone(pid: int, deadline: float) -> bool:
    while True:
        _reap(pid)
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def stop(name: str, run_dir: Path, timeout: float = 10.0) -> StopResult:
    """Stop the verified process ``name`` (and its process group), then drop its record.

    SIGTERM first; SIGKILL if it (or anything left in its group) is still
    there after ``timeout`` seconds. A record that does not verify is removed
    without sending any signal.
    """
    return stop_many([name], run_dir, timeout)[name]


def stop_many(names: Sequence[str], run_dir: Path, timeout: float = 10.0) -> dict[str, StopResult]:
    """:func:`stop` for several names at once: all get SIGTERM, then one shared wait."""
    results: dict[str, StopResult] = {}
    targets: list[tuple[ProcessRecord, bool]] = []
    for name in names:
        if not has_pid_file(run_dir, name):
            results[name] = StopResult.NOT_RUNNING
            continue
        record = read_record(run_dir, name)
        if record is None or not verify(record):
            remove_record(run_dir, name)
            results[name] = StopResult.STALE
            continue
        # We started it with start_new_session=True, so pid == pgid; check
        # before signalling a whole group.
        try:
            group = os.getpgid(record.pid) == record.pid
        except ProcessLookupError:
            remove_record(run_dir, name)
            results[name] = StopResult.STALE
            continue
        _signal(record, signal.SIGTERM, group)
        targets.append((record, group))
    deadline = time.monotonic() + timeout
    for record, group in targets:
        result = StopResult.TERMINATED
        if not _wait_gone(record.pid, deadline):
            _signal(record, signal.SIGKILL, group)
            result = StopResult.KILLED
            _wait_gone(record.pid, time.monotonic() + 5.0)
        elif group:
            # The leader is gone; give stragglers in its group the rest of the time. "Gone"
            # includes a zombie leader whose other threads still run (a JVM shutting down):
            # reap it as it exits, or the group stays "alive" until the deadline.
            while time.monotonic() < deadline:
                _reap(record.pid)
                if not _group_alive(record.pid):
                    break
                time.sleep(0.1)
            _reap(record.pid)
            if _group_alive(record.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(record.pid, signal.SIGKILL)
                result = StopResult.KILLED
        remove_record(run_dir, record.name)
        results[record.name] = result
    return results


class NotReadyError(RuntimeError):
    """A process did not become ready (it died, or the timeout passed)."""

    def __init__(self, name: str, reason: str, log: Path, tail: Sequence[str]) -> None:
        super().__init__(f"{name} {reason}; see {log}")
        self.name = name
        self.reason = reason
        self.log = log
        self.tail = list(tail)


def wait_ready(
    checks: Sequence[tuple[ProcessRecord, Callable[[], bool]]],
    timeout: float,
    poll: float = 0.25,
) -> dict[str, float]:
    """Poll every check until all pass; returns seconds-to-ready per name.

    Raises :class:`NotReadyError` (with the last 20 log lines) as soon as a
    process dies, or when ``timeout`` passes with some check still failing.
    """
    started = time.monotonic()
    deadline = started + timeout
    pending = {record.name: (record, check) for record, check in checks}
    ready_after: dict[str, float] = {}
    while pending:
        for name, (record, check) in list(pending.items()):
            _reap(record.pid)
            if not verify(record):
                log = Path(record.log)
                raise NotReadyError(
                    name, "exited during start-up", log, tail_lines(log, 20, record.log_offset)
                )
            if check():
                ready_after[name] = time.monotonic() - started
                del pending[name]
        if not pending:
            break
        if time.monotonic() >= deadline:
            record = next(iter(pending.values()))[0]
            log = Path(record.log)
            raise NotReadyError(
                record.name,
                f"not ready after {timeout:.0f}s",
                log,
                tail_lines(log, 20, record.log_offset),
            )
        time.sleep(poll)
    return ready_after


def tail_lines(path: Path, lines: int = 20, offset: int = 0) -> list[str]:
    """The last ``lines`` lines of ``path`` (reading from ``offset``); [] if missing."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(offset, size - 256 * 1024)
            fh.seek(start)
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:] if lines > 0 else []


def log_contains(path: Path, needle: str, offset: int = 0) -> bool:
    """Whether ``needle`` occurs in ``path`` at or after byte ``offset``."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return needle.encode() in fh.read()
    except OSError:
        return False
