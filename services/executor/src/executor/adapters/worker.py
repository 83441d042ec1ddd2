"""The inside of a job's worker process (forked by the fork server, `adapters/zygote.py`).

It reads its request (one JSON line) from its socket, limits itself (RLIMIT_AS, RLIMIT_CPU,
an alarm as a wall-clock backstop; hard limits, so the job cannot raise them), then loads the
job type, runs the one job in its own event loop and answers on the socket
(`domain.worker_protocol`). SIGTERM is a cancel: the job gets `asyncio.CancelledError` at its
next await and may clean up; the executor kills the process if it has not ended after a grace
period. The fork server has imported this module and the job types, so a fork starts with
everything loaded."""

from __future__ import annotations

import asyncio
import importlib
import os
import resource
import signal
import socket
from dataclasses import dataclass, field
from typing import Any

from contracts.events.execution import Warnings
from executor.domain.limits import EXIT_OUT_OF_MEMORY, address_space_limit, cpu_rlimit
from executor.domain.worker_protocol import (
    Failure,
    Message,
    Progress,
    Result,
    Skip,
    WorkerRequest,
    encode,
    failure_of,
)
from jobkit import JobType, Resources, SkipJob


def main(channel: socket.socket) -> None:
    """Runs the job requested on `channel`; an empty request (a ping) does nothing."""
    with channel.makefile("rb") as lines:
        line = lines.readline()
    if not line.strip():
        channel.close()
        return
    request = WorkerRequest.from_json(line.decode())
    limit_self(request)
    try:
        asyncio.run(_serve(channel, request))
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)
    finally:
        channel.close()


def limit_self(request: WorkerRequest) -> None:
    if request.max_cpu_s is not None:
        resource.setrlimit(resource.RLIMIT_CPU, cpu_rlimit(request.max_cpu_s))
    if request.max_memory_mb is not None:
        limit = address_space_limit(_address_space(), request.max_memory_mb)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if request.alarm_s is not None:
        signal.alarm(request.alarm_s)


def _address_space() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class WorkerContext:
    """The `jobkit.JobContext` of a job in a worker process."""

    job_id: str
    batch_id: str
    attempt: int
    params: dict[str, Any]
    channel: socket.socket
    cancelled: bool = False
    warnings: Warnings = field(default_factory=Warnings)

    @property
    def cancel_requested(self) -> bool:
        return self.cancelled

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        _send(self.channel, Progress(percent, message))

    def warn(self, message: str) -> None:
        self.warnings.add(message)  # sent with the result


async def _serve(channel: socket.socket, request: WorkerRequest) -> None:
    ctx = WorkerContext(request.job_id, request.batch_id, request.attempt, request.params, channel)
    task = asyncio.current_task()
    assert task is not None

    def cancel() -> None:
        ctx.cancelled = True
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, cancel)
    answer: Message
    try:
        job_type = _load(request.job_type)
        await job_type.setup(Resources.from_environ(None, os.environ))
        item = job_type.parse_input(request.item)
        output = job_type.shape_output(await job_type.run(item, ctx))
        answer = Result(output, ctx.warnings.listed())
    except SkipJob as exc:
        answer = Skip(exc.reason)
    except asyncio.CancelledError:
        if not ctx.cancelled:
            raise
        return  # the executor asked for it and reports the job cancelled
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)  # no room left to say more
    except Exception as exc:
        answer = failure_of(exc)
    try:
        _send(channel, answer)
    except (TypeError, ValueError) as exc:  # an output JSON cannot hold
        _send(channel, Failure("InvalidOutput", str(exc), False))


def _load(path: str) -> JobType:
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    instance = target() if isinstance(target, type) else target
    if not isinstance(instance, JobType):
        raise TypeError(f"{path} is not a job type")
    return instance


def _send(channel: socket.socket, message: Message) -> None:
    channel.sendall(encode(message))
