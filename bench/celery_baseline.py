"""Celery's time for N no-op tasks, run as a group with result tracking, on a Redis broker
and backend started here (Debian's `redis-server`, on a free loopback port, no persistence)
with a worker of 2 prefork processes (one per core of these machines). Everything it starts
is stopped by PID at the end."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen[bytes], grace_s: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def celery_seconds(n: int, concurrency: int = 2) -> float:
    """Seconds from sending a group of n no-op tasks to having every result."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise RuntimeError("redis-server is missing: `apt-get install redis-server` (Debian)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    redis = subprocess.Popen(
        [
            redis_server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        wait_port(port, 10)
        url = f"redis://127.0.0.1:{port}/0"
        env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(HERE)}
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celery_tasks",
                "worker",
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            cwd=HERE,
            stdout=open(workdir / "worker.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        os.environ["BENCH_REDIS_URL"] = url
        sys.path.insert(0, str(HERE))
        import celery_tasks
        from celery import group

        celery_tasks.app.conf.update(broker_url=url, result_backend=url)
        # warm-up: the worker is up and has imported the task
        celery_tasks.noop.delay(0).get(timeout=60)
        started = time.perf_counter()
        result = group(celery_tasks.noop.s(0) for _ in range(n)).apply_async()
        values = result.join_native(timeout=1800)
        elapsed = time.perf_counter() - started
        if len(values) != n:
            raise RuntimeError(f"celery returned {len(values)} results for {n} tasks")
        return elapsed
    finally:
        if worker is not None:
            stop(worker)
        stop(redis)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seconds = celery_seconds(count)
    print(f"celery: {count} tasks in {seconds:.2f} s = {count / seconds:.0f} tasks/s")
