"""Running the installed `batchyard` script as a user does, for the CLI's e2e tests: with
the stack's URL and key in its environment, piped or under a pseudo-terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stack_support import Stack

BATCHYARD = str(Path(sys.executable).parent / "batchyard")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def cli_env(stack: Stack, home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without BATCHYARD_* settings, plus the stack's URL and
    admin key, and `home` as HOME and XDG_CONFIG_HOME (no user's config file leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHYARD_")}
    env.update(
        BATCHYARD_URL=stack.url,
        BATCHYARD_API_KEY=stack.admin_key,
        XDG_CONFIG_HOME=str(home),
        HOME=str(home),
    )
    env.update(extra)
    return env


class Cli:
    """`cli("status", id)` runs `batchyard status <id>` piped, with a deadline."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BATCHYARD, *args],
            env=dict(env) if env is not None else self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


def created_id(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    batch_id: str = json.loads(result.stdout)["id"]
    return batch_id


def wait_status(
    run: Cli, batch_id: str, statuses: set[str], within_s: float = 60
) -> dict[str, Any]:
    """Polls `batchyard status --json` until the batch is in one of `statuses`."""
    deadline = time.monotonic() + within_s
    batch: dict[str, Any] = {}
    while time.monotonic() < deadline:
        result = run("status", batch_id, "--json")
        assert result.returncode == 0, result.stderr
        batch = json.loads(result.stdout)
        if batch["status"] in statuses:
            return batch
        time.sleep(0.5)
    raise AssertionError(f"{batch_id} stayed {batch.get('status')}: {batch.get('progress')}")


def run_under_pty(args: list[str], env: Mapping[str, str], timeout_s: float) -> tuple[int, str]:
    """Runs the CLI with a pseudo-terminal as stdin/stdout/stderr (120x30); returns its exit
    code and everything it drew."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen(
        [BATCHYARD, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "30"},
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        else:
            raise AssertionError("monitor did not finish in time")
        return process.wait(timeout=10), b"".join(chunks).decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
