"""Running one job in a worker process of its own, for job types with `isolation = "process"`.

Workers are forked by a fork server (`adapters/zygote.py`) that the executor starts once, with
the job types' modules imported, so a job pays for a fork and not for an interpreter start
(the measured overhead is in docs/job-types.md). Each worker limits itself
(`adapters/worker.py`) and talks JSON over a socket pair (`domain/worker_protocol.py`): the
request goes in as one line, progress and the answer come back as lines.

The executor stays in charge of a worker's life: a wall-clock deadline, a cancel or a
shutdown cancels `run`, which ends the worker by its PID (SIGTERM, then SIGKILL after
`grace_s`) and returns only once the fork server has reaped it, so a job's slot is never free
while its process still holds memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from contracts.events.execution import Warnings
from contracts.vocabulary import ResourceLimits
from executor.adapters import worker
from executor.domain.limits import judge_exit
from executor.domain.worker_protocol import (
    MAX_LINE_BYTES,
    Failure,
    Progress,
    ProtocolError,
    Result,
    Skip,
    WorkerRequest,
    decode,
)
from jobkit import PermanentError, RetryableError

log = logging.getLogger(__name__)

OnProgress = Callable[[float | None, str], Awaitable[None]]

# How long a worker that has answered may take to exit before it is killed.
EXIT_AFTER_ANSWER_S = 5.0
STARTUP_TIMEOUT_S = 60.0


class ForkServerGone(RetryableError):
    def __init__(self) -> None:
        super().__init__("the worker fork server is gone", error_class="WorkerUnavailable")


class ProcessIsolation:
    """Starts the fork server and runs one job per worker. `preload`: modules the fork server
    imports once (the process-isolated job types' modules)."""

    def __init__(self, preload: Sequence[str] = (), *, grace_s: float = 5.0) -> None:
        self.preload = [worker.__name__, *preload]
        self.grace_s = grace_s
        self.pids: dict[str, int] = {}  # job id -> worker PID, while the worker lives
        self.startup_ms: float | None = None
        self._server: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._started: dict[str, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._usage: dict[int, dict[str, float]] = {}  # an ended worker's, until its run ends

    async def start(self) -> None:
        """Starts the fork server (it imports the preloaded modules) and one empty worker, so
        the first job waits for neither. Records the empty worker's round trip."""
        if self._reader is not None and not self._reader.done():
            return
        began = time.perf_counter()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        self._server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "executor.adapters.zygote",
            str(theirs.fileno()),
            *self.preload,
            pass_fds=(theirs.fileno(),),
            stdin=asyncio.subprocess.DEVNULL,
        )
        theirs.close()
        self._control = ours
        self._reader = asyncio.create_task(self._read_control(ours))
        pid, channel = await asyncio.wait_for(self._fork("ping"), STARTUP_TIMEOUT_S)
        channel.sendall(b"\n")
        channel.close()
        await self._exit_code(pid, within_s=STARTUP_TIMEOUT_S)
        self._exits.pop(pid, None)
        self._usage.pop(pid, None)
        self.startup_ms = round((time.perf_counter() - began) * 1000, 1)
        log.info(
            "worker fork server ready",
            extra={"startup_ms": self.startup_ms, "fork_server_pid": self._server.pid},
        )

    async def close(self) -> None:
        """Stops the fork server (its workers were ended by their jobs' `run`)."""
        if self._control is not None:
            self._control.close()  # the fork server exits on end of stream
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait(), 5)
            except TimeoutError:
                self._server.kill()
                await self._server.wait()

    async def run(
        self,
        request: WorkerRequest,
        limits: ResourceLimits | None,
        on_progress: OnProgress,
        warnings: Warnings | None = None,
        resources: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """Runs the job; returns its output (its warnings go into `warnings`, what its worker
        used into `resources`: `cpu_s`, `max_rss_mb`) or raises its `JobError` (a limit it
        exceeded, its own error, `WorkerCrashed`) or `SkipJob`. Cancelling this coroutine
        ends the worker first."""
        async with self._starting:
            await self.start()
            pid, channel = await self._fork(request.job_id)
        self.pids[request.job_id] = pid
        try:
            answer = await self._converse(channel, request, on_progress)
            exitcode = await self._exit_code(pid, within_s=EXIT_AFTER_ANSWER_S)
            if exitcode is None:  # answered, then hung: it has nothing more to give
                exitcode = await self._stop(pid, grace_s=0)
        except BaseException:  # cancelled (a cancel, a deadline, a shutdown) or broken
            await self._stop(pid, grace_s=self.grace_s)
            raise
        finally:
            channel.close()
            self.pids.pop(request.job_id, None)
            self._exits.pop(pid, None)
            used = self._usage.pop(pid, None)
            if used is not None and resources is not None:
                resources.update(used)
        if isinstance(answer, Result):
            if warnings is not None:
                for warning in answer.warnings:
                    warnings.add(warning)
            return answer.output
        if isinstance(answer, Failure):
            raise answer.to_error()
        if isinstance(answer, Skip):
            raise answer.to_exception()
        raise judge_exit(exitcode, limits)

    async def _fork(self, job_id: str) -> tuple[int, socket.socket]:
        """A new worker: its PID and the executor's end of its socket."""
        if self._control is None or self._reader is None or self._reader.done():
            raise ForkServerGone()
        ours, theirs = socket.socketpair()
        started = asyncio.get_running_loop().create_future()
        self._started[job_id] = started
        try:
            message = json.dumps({"start": job_id}).encode()
            socket.send_fds(self._control, [message], [theirs.fileno()])
            pid = await started
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            self._started.pop(job_id, None)
        self._exits.setdefault(pid, asyncio.get_running_loop().create_future())
        return pid, ours

    async def _read_control(self, control: socket.socket) -> None:
        """Hands the fork server's messages to whoever waits for them; when it is gone, every
        waiter gets `ForkServerGone`."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(control, 65536)
                if not data:
                    break
                message = json.loads(data)
                if "started" in message:
                    started = self._started.get(message["started"])
                    if started is not None and not started.done():
                        started.set_result(int(message["pid"]))
                elif "exited" in message:
                    pid = int(message["exited"])
                    if "cpu_s" in message and pid in self._exits:  # a run waits for it
                        self._usage[pid] = {
                            "cpu_s": float(message["cpu_s"]),
                            "max_rss_mb": round(int(message["max_rss_kb"]) / 1024, 1),
                        }
                    ended = self._exits.setdefault(pid, loop.create_future())
                    if not ended.done():
                        ended.set_result(int(message["code"]))
        except (OSError, ValueError):
            log.exception("the worker fork server's messages stopped")
        finally:
            for waiter in [*self._started.values(), *self._exits.values()]:
                if not waiter.done():
                    waiter.set_exception(ForkServerGone())

    async def _converse(
        self, channel: socket.socket, request: WorkerRequest, on_progress: OnProgress
    ) -> Result | Failure | Skip | None:
        """Sends the request, reads the worker's lines until its answer; None when it ended
        without one."""
        reader, writer = await asyncio.open_unix_connection(sock=channel, limit=MAX_LINE_BYTES)
        try:
            writer.write(request.to_json().encode() + b"\n")
            await writer.drain()
            while True:
                try:
                    line = await reader.readline()
                except ValueError as exc:  # longer than MAX_LINE_BYTES
                    raise PermanentError(str(exc), error_class="InvalidOutput") from None
                if not line.endswith(b"\n"):
                    return None  # end of stream: the worker is gone
                try:
                    message = decode(line)
                except ProtocolError as exc:
                    raise PermanentError(str(exc), error_class="WorkerProtocolError") from None
                if isinstance(message, Progress):
                    await on_progress(message.percent, message.message)
                else:
                    return message
        except ConnectionResetError:
            return None
        finally:
            writer.close()

    async def _stop(self, pid: int, *, grace_s: float) -> int:
        """Ends the worker by its PID and waits until it is reaped: SIGTERM (a cancel, which
        the job sees at its next await), SIGKILL after `grace_s`. Interrupted (a second
        cancel), it still kills the worker before it gives up waiting."""
        code: int | None = None
        try:
            if grace_s > 0 and _signal(pid, signal.SIGTERM, self._exits.get(pid)):
                code = await self._exit_code(pid, within_s=grace_s)
            if code is None:
                _signal(pid, signal.SIGKILL, self._exits.get(pid))
                code = await self._exit_code(pid, within_s=None)
        finally:
            if code is None:
                _signal(pid, signal.SIGKILL, self._exits.get(pid))
        assert code is not None
        return code

    async def _exit_code(self, pid: int, within_s: float | None) -> int | None:
        """The worker's exit code once it was reaped; None if it still runs after
        `within_s`. (Negative: the signal that ended it.)"""
        ended = self._exits.setdefault(pid, asyncio.get_running_loop().create_future())
        try:
            code = await asyncio.wait_for(asyncio.shield(ended), within_s)
        except TimeoutError:
            return None
        return code


def _signal(pid: int, signum: int, ended: asyncio.Future[int] | None) -> bool:
    """Sends `signum` to a worker not yet reaped (so its PID is still its own)."""
    if ended is None or ended.done():
        return False
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True
