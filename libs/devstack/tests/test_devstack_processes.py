"""Unit tests for pid-file handling, cmdline verification and start/stop."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from devstack import processes
from devstack.processes import ProcessRecord, StopResult

pytestmark = pytest.mark.unit


def _record(
    name: str = "svc", pid: int = 4242, argv: tuple[str, ...] = ("/bin/x", "-a")
) -> ProcessRecord:
    return ProcessRecord(
        name=name,
        pid=pid,
        argv=argv,
        started_at=1.5,
        start_ticks=99,
        log="/tmp/x.log",
        log_offset=7,
        meta={"port": "8000"},
    )


def test_record_json_round_trip() -> None:
    rec = _record()
    assert ProcessRecord.from_json(rec.to_json()) == rec


@pytest.mark.parametrize("text", ["[]", "{}", '{"name": "x"}', "not json"])
def test_record_from_bad_json_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"record|JSON|Expecting value"):
        ProcessRecord.from_json(text)


def test_write_then_read_record(tmp_path: Path) -> None:
    rec = _record()
    processes.write_record(tmp_path, rec)
    assert (tmp_path / "svc.pid").read_text() == "4242\n"
    assert processes.read_record(tmp_path, "svc") == rec
    assert processes.list_names(tmp_path) == ["svc"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_read_record_rejects_pid_mismatch_and_garbage(tmp_path: Path) -> None:
    processes.write_record(tmp_path, _record())
    (tmp_path / "svc.pid").write_text("1234\n")
    assert processes.read_record(tmp_path, "svc") is None
    (tmp_path / "svc.pid").write_text("banana\n")
    assert processes.read_record(tmp_path, "svc") is None
    assert processes.read_record(tmp_path, "absent") is None


def test_remove_record_is_idempotent(tmp_path: Path) -> None:
    processes.write_record(tmp_path, _record())
    processes.remove_record(tmp_path, "svc")
    processes.remove_record(tmp_path, "svc")
    assert processes.list_names(tmp_path) == []
    assert processes.list_names(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        (
            ["/usr/bin/java", "-cp", "x", "kafka.Kafka"],
            ["/usr/bin/java", "-cp", "x", "kafka.Kafka"],
            True,
        ),
        # shebang script: the interpreter is prepended by the kernel
        (
            ["/r/.venv/bin/batchyard-api"],
            ["/r/.venv/bin/python3.11", "/r/.venv/bin/batchyard-api"],
            True,
        ),
        (["/r/bin/tool", "--x"], ["/usr/bin/python3", "-E", "/r/bin/tool", "--x"], True),
        # same program spelled differently
        (["/usr/bin/java", "kafka.Kafka"], ["java", "kafka.Kafka"], True),
        # different program or different arguments
        (["/usr/bin/java", "kafka.Kafka"], ["/usr/bin/java", "other.Main"], False),
        (
            ["/r/.venv/bin/batchyard-api"],
            ["/r/.venv/bin/python3.11", "/r/.venv/bin/batchyard-reporter"],
            False,
        ),
        (["/bin/sleep", "100"], ["/usr/bin/python3", "-m", "pytest"], False),
        (["/bin/sleep", "100"], ["/bin/sleep"], False),
        (["/bin/sleep"], [], False),
        ([], ["/bin/sleep"], False),
        (["/bin/sleep"], None, False),
    ],
)
def test_cmdline_matches(expected: list[str], actual: list[str] | None, ok: bool) -> None:
    assert processes.cmdline_matches(expected, actual) is ok


def _fake_proc(tmp_path: Path, pid: int, cmdline: bytes, stat: str) -> Path:
    d = tmp_path / "proc" / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(cmdline)
    (d / "stat").write_text(stat)
    return tmp_path / "proc"


def test_read_cmdline_and_stat_from_fake_proc(tmp_path: Path) -> None:
    # comm with spaces and parentheses must not confuse the stat parser
    fields = ["S", *[str(n) for n in range(4, 22)], "777", "0"]
    proc = _fake_proc(
        tmp_path, 10, b"/bin/sleep\x00100\x00", "10 (we (ird) name) " + " ".join(fields)
    )
    assert processes.read_cmdline(10, proc) == ["/bin/sleep", "100"]
    assert processes.read_state(10, proc) == "S"
    assert processes.read_start_ticks(10, proc) == 777
    assert processes.read_cmdline(11, proc) is None
    assert processes.read_start_ticks(11, proc) is None


def test_empty_cmdline_is_none(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, 12, b"", "12 (z) Z 1")
    assert processes.read_cmdline(12, proc) is None


def test_verify_uses_start_ticks_else_cmdline(tmp_path: Path) -> None:
    pid = os.getpid()  # alive for sure; the fake /proc decides the rest
    fields = ["S", *[str(n) for n in range(4, 22)], "555", "0"]
    proc = _fake_proc(tmp_path, pid, b"/bin/sleep\x00100\x00", f"{pid} (sleep) " + " ".join(fields))
    good = ProcessRecord("s", pid, ("/bin/sleep", "100"), 0.0, start_ticks=555)
    assert processes.verify(good, proc)
    assert not processes.verify(
        ProcessRecord("s", pid, ("/bin/sleep", "100"), 0.0, start_ticks=556), proc
    )
    # pid + start time identify the process even if its command line reads differently
    assert processes.verify(ProcessRecord("s", pid, ("/bin/cat",), 0.0, start_ticks=555), proc)
    # without a recorded start time the command line decides
    assert processes.verify(ProcessRecord("s", pid, ("/bin/sleep", "100"), 0.0), proc)
    assert not processes.verify(ProcessRecord("s", pid, ("/bin/cat",), 0.0), proc)


def test_zombie_is_not_alive(tmp_path: Path) -> None:
    pid = os.getpid()
    proc = _fake_proc(tmp_path, pid, b"", f"{pid} (x) Z 1 2 3")
    assert not processes.pid_alive(pid, proc)
    assert not processes.pid_alive(0)


def test_stale_record_is_never_signalled(tmp_path: Path) -> None:
    # A pid file pointing at *this* test process, but claiming another program:
    # stop() must clean it up without sending a signal (we would die otherwise).
    rec = ProcessRecord("stale", os.getpid(), ("/bin/sleep", "1000"), time.time())
    processes.write_record(tmp_path, rec)
    assert not processes.is_running("stale", tmp_path)
    assert processes.stop("stale", tmp_path) is StopResult.STALE
    assert processes.list_names(tmp_path) == []
    assert processes.stop("stale", tmp_path) is StopResult.NOT_RUNNING


def test_start_is_running_stop_real_process(tmp_path: Path) -> None:
    run, log = tmp_path / "run", tmp_path / "logs" / "sleeper.log"
    code = "import sys, time; print('hello', flush=True); time.sleep(60)"
    rec = processes.start_process(
        "sleeper", [sys.executable, "-c", code], {"X": "1"}, log, run_dir=run
    )
    try:
        assert (run / "sleeper.pid").read_text().strip() == str(rec.pid)
        assert processes.is_running("sleeper", run)
        assert os.getpgid(rec.pid) == rec.pid  # its own session/group leader
        with pytest.raises(processes.AlreadyRunningError):
            processes.start_process("sleeper", [sys.executable, "-c", code], None, log, run_dir=run)
        deadline = time.monotonic() + 10
        while (
            not processes.log_contains(log, "hello", rec.log_offset) and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert processes.log_contains(log, "hello", rec.log_offset)
        assert "starting sleeper" in log.read_text()
    finally:
        result = processes.stop("sleeper", run, timeout=5)
    assert result is StopResult.TERMINATED
    assert not processes.is_running("sleeper", run)
    assert not processes.pid_alive(rec.pid)
    assert processes.list_names(run) == []


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    run, log = tmp_path / "run", tmp_path / "stubborn.log"
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('armed', flush=True); time.sleep(60)"
    )
    rec = processes.start_process("stubborn", [sys.executable, "-c", code], None, log, run_dir=run)
    deadline = time.monotonic() + 10
    while not processes.log_contains(log, "armed", rec.log_offset) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes.stop("stubborn", run, timeout=0.5) is StopResult.KILLED
    assert not processes.pid_alive(rec.pid)


def test_wait_ready_reports_death_with_log_tail(tmp_path: Path) -> None:
    run, log = tmp_path / "run", tmp_path / "dies.log"
    code = "print('boom: config missing', flush=True); raise SystemExit(3)"
    rec = processes.start_process("dies", [sys.executable, "-c", code], None, log, run_dir=run)
    with pytest.raises(processes.NotReadyError) as info:
        processes.wait_ready([(rec, lambda: False)], timeout=10)
    assert "exited" in str(info.value)
    assert any("boom: config missing" in line for line in info.value.tail)
    processes.stop("dies", run)


def test_wait_ready_times_out(tmp_path: Path) -> None:
    run, log = tmp_path / "run", tmp_path / "slow.log"
    rec = processes.start_process(
        "slow", [sys.executable, "-c", "import time; time.sleep(30)"], None, log, run_dir=run
    )
    try:
        with pytest.raises(processes.NotReadyError, match="not ready after"):
            processes.wait_ready([(rec, lambda: False)], timeout=0.3, poll=0.05)
        took = processes.wait_ready([(rec, lambda: True)], timeout=1)
        assert set(took) == {"slow"}
    finally:
        processes.stop("slow", run)


def test_tail_lines(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert processes.tail_lines(log, 3) == ["line 97", "line 98", "line 99"]
    assert processes.tail_lines(tmp_path / "missing.log") == []


def test_stop_of_a_process_whose_leader_thread_exits_first_waits_only_for_its_exit(
    tmp_path: Path,
) -> None:
    """A JVM (Kafka) can look like a zombie (its first thread gone) while its other threads
    still shut down; once the whole process has exited it must be reaped, not waited on until
    the timeout and reported killed (every `devstack test` waited 20 s for Kafka so)."""
    run, log = tmp_path / "run", tmp_path / "jvm-like.log"
    code = (
        "import ctypes, os, signal, threading, time\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
        "asked = threading.Event()\n"
        "def shut_down():\n"
        "    signal.sigwait({signal.SIGTERM})\n"
        "    asked.set()\n"
        "    time.sleep(0.5)\n"
        "    os._exit(0)\n"
        "threading.Thread(target=shut_down).start()\n"
        "print('armed', flush=True)\n"
        "asked.wait()\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    rec = processes.start_process("jvm-like", [sys.executable, "-c", code], None, log, run_dir=run)
    deadline = time.monotonic() + 10
    while not processes.log_contains(log, "armed", rec.log_offset) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes.log_contains(log, "armed", rec.log_offset)
    started = time.monotonic()
    assert processes.stop("jvm-like", run, timeout=8) is StopResult.TERMINATED
    assert time.monotonic() - started < 4
    assert not processes.pid_alive(rec.pid)
