"""Running one job in a worker process of its own, for job types with `isolation = "process"`.

Workers are forked by a multiprocessing fork server that is started once, with the job types'
modules preloaded, so a job pays for a fork and not for an interpreter start (measured on the
dev machine: see docs/job-types.md). Each worker limits itself (`adapters/worker.py`) and talks
JSON over a socket pair (`domain/worker_protocol.py`).

The executor stays in charge of the worker's life: a wall-clock deadline, a cancel or a
shutdown cancels `run`, which ends the worker by its PID (SIGTERM, then SIGKILL after
`grace_s`) and returns only once the worker is gone, so a job's slot is never free while its
process still holds memory. Every multiprocessing call runs on one thread of its own: they
block (a start waits for the fork server), and a worker's exit status can be read only once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from multiprocessing.context import ForkServerContext, ForkServerProcess
from typing import Any

from contracts.vocabulary import ResourceLimits
from executor.adapters import worker
from executor.domain.limits import judge_exit
from executor.domain.worker_protocol import (
    MAX_LINE_BYTES,
    Failure,
    Progress,
    ProtocolError,
    Result,
    WorkerRequest,
    decode,
)
from jobkit import PermanentError

log = logging.getLogger(__name__)

OnProgress = Callable[[float | None, str], Awaitable[None]]

# How long a worker that has answered may take to exit before it is killed.
EXIT_AFTER_ANSWER_S = 5.0


class ProcessIsolation:
    """Starts workers and runs one job in each. `preload`: modules the fork server imports
    once (the process-isolated job types' modules)."""

    def __init__(self, preload: Sequence[str] = (), *, grace_s: float = 5.0) -> None:
        self.grace_s = grace_s
        self.pids: dict[str, int] = {}  # job id -> worker PID, while the worker lives
        self._context: ForkServerContext = get_context("forkserver")
        # "__main__" too: multiprocessing runs the parent's main script again in every child
        # unless the fork server imported it once (for a console script that would import the
        # whole executor per job; the script's `__name__` guard keeps it from starting).
        self._context.set_forkserver_preload(["__main__", worker.__name__, *preload])
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workers")
        self.startup_ms: float | None = None

    async def start(self) -> None:
        """Starts the fork server (it imports the preloaded modules) and one empty worker, so
        the first job does not wait for either. Records the empty worker's round trip."""
        if self.startup_ms is not None:
            return
        began = time.perf_counter()
        process = self._context.Process(target=worker.ping, daemon=True)
        await self._call(process.start)
        await self._exit_code(process, within_s=None)
        await self._call(process.close)
        self.startup_ms = round((time.perf_counter() - began) * 1000, 1)
        log.info("worker processes ready", extra={"startup_ms": self.startup_ms})

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def run(
        self,
        request: WorkerRequest,
        limits: ResourceLimits | None,
        on_progress: OnProgress,
    ) -> dict[str, Any]:
        """Runs the job; returns its output or raises its `JobError` (a limit it exceeded,
        its own error, `WorkerCrashed`). Cancelling this coroutine ends the worker first."""
        ours, theirs = socket.socketpair()
        process = self._context.Process(
            target=worker.main,
            args=(theirs, request.to_json()),
            daemon=True,
            name=f"job {request.job_id}",
        )
        try:
            await self._call(process.start)
        finally:
            theirs.close()
        pid = process.pid
        assert pid is not None
        self.pids[request.job_id] = pid
        try:
            answer = await self._converse(ours, on_progress)
            exitcode = await self._exit_code(process, within_s=EXIT_AFTER_ANSWER_S)
            if exitcode is None:  # answered, then hung: it has nothing more to give
                await self._stop(process, grace_s=0)
                exitcode = process.exitcode
        except BaseException:  # cancelled (a cancel, a deadline, a shutdown) or broken
            await self._stop(process, grace_s=self.grace_s)
            raise
        finally:
            ours.close()
            self.pids.pop(request.job_id, None)
            await self._call(lambda: _close(process))
        if isinstance(answer, Result):
            return answer.output
        if isinstance(answer, Failure):
            raise answer.to_error()
        assert exitcode is not None
        raise judge_exit(exitcode, limits)

    async def _converse(
        self, channel: socket.socket, on_progress: OnProgress
    ) -> Result | Failure | None:
        """Reads the worker's lines until its answer; None when it ended without one."""
        reader, writer = await asyncio.open_unix_connection(sock=channel, limit=MAX_LINE_BYTES)
        try:
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
        finally:
            writer.close()

    async def _stop(self, process: ForkServerProcess, *, grace_s: float) -> None:
        """Ends the worker by its PID and waits until it is gone: SIGTERM (a cancel, which the
        job sees at its next await), SIGKILL after `grace_s`. Interrupted (a second cancel), it
        still kills the worker before it gives up waiting."""
        pid = process.pid
        assert pid is not None
        gone = False
        try:
            if grace_s > 0 and await self._signal(process, signal.SIGTERM):
                gone = await self._exit_code(process, within_s=grace_s) is not None
            if not gone and await self._signal(process, signal.SIGKILL):
                await self._exit_code(process, within_s=None)
            gone = True
        finally:
            if not gone:
                _kill(pid)

    async def _signal(self, process: ForkServerProcess, signum: int) -> bool:
        """Sends `signum` to a worker still alive; whether it was."""
        if process.pid is None or await self._call(lambda: process.exitcode) is not None:
            return False
        return _kill(process.pid, signum)

    async def _exit_code(self, process: ForkServerProcess, within_s: float | None) -> int | None:
        """The worker's exit code once it ended; None if it still runs after `within_s`."""
        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        sentinel = process.sentinel

        def readable() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(sentinel, readable)
        try:
            await asyncio.wait_for(ended, within_s)
        except TimeoutError:
            return None
        finally:
            loop.remove_reader(sentinel)
        code: int | None = await self._call(lambda: process.exitcode)
        return code

    async def _call(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)


def _close(process: ForkServerProcess) -> None:
    with contextlib.suppress(ValueError):  # still running: after an interrupted stop (killed)
        process.close()


def _kill(pid: int, signum: int = signal.SIGKILL) -> bool:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True
