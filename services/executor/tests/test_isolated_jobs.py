"""Process-isolated job types through the executor's runner, with real worker processes: the
OS enforces the batch's limits, a job past them fails alone with `ResourceLimitExceeded`,
cancel and deadlines end the worker by its PID, and slots come back only once it is gone.
(Events are recorded instead of sent: the stack-level proof is
tests/e2e/test_resource_limits.py.)"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.codec import envelope_for
from contracts.events import CancelBroadcast, Event, JobDispatched
from contracts.topics import Topics
from contracts.vocabulary import ResourceLimits
from executor.adapters.isolation import ProcessIsolation
from executor.domain.worker_protocol import WorkerRequest
from executor.handlers.runner import Executor
from jobkit import JobError
from jobtypes.allocate import DemoAllocate
from jobtypes.demo import DemoSleep
from servicekit.publisher import RecordingPublisher

pytestmark = pytest.mark.integration

LIMITS = ResourceLimits(max_memory_mb=64, max_cpu_s=1, timeout_s=20)


@pytest.fixture
async def executor() -> AsyncIterator[tuple[Executor, RecordingPublisher]]:
    isolation = ProcessIsolation(["jobtypes.allocate"], grace_s=2)
    await isolation.start()
    out = RecordingPublisher()
    ex = Executor(
        "e1",
        4,
        {"demo.allocate": DemoAllocate(), "demo.sleep": DemoSleep()},
        out,
        Topics(),
        isolation=isolation,
    )
    yield ex, out
    await ex.shutdown()
    await isolation.close()


def dispatch(index: int, item: dict[str, Any], **kw: Any) -> JobDispatched:
    fields: dict[str, Any] = {
        "job_id": f"b1.{index}",
        "batch_id": "b1",
        "index": index,
        "job_type": "demo.allocate",
        "attempt": 1,
        "item": item,
        "timeout_s": 30,
        "lease_s": 30,
        "dispatched_at": datetime.now(UTC),
        "resource_limits": LIMITS,
    }
    return JobDispatched(**(fields | kw))


async def run(ex: Executor, *events: Event) -> None:
    await ex.accept([(envelope_for(e, producer="t"), e) for e in events])


async def drain(ex: Executor, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not ex.running:
            return
        await asyncio.sleep(0.02)
    assert not ex.running, f"jobs still running: {sorted(ex.running)}"


def outcomes(out: RecordingPublisher) -> dict[str, dict[str, Any]]:
    return {
        m.envelope.data["job_id"]: {"type": m.envelope.type, **m.envelope.data}
        for m in out.sent
        if m.envelope.type in ("JobCompleted", "JobFailed", "JobSkipped")
    }


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


async def test_warnings_noted_in_a_worker_process_come_with_the_outcome(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    noted = [f"odd thing {n}" for n in range(25)]
    await run(ex, dispatch(0, {"warnings": noted}), dispatch(1, {}))
    await drain(ex)
    done = outcomes(out)
    assert done["b1.0"]["type"] == "JobCompleted"
    warnings = done["b1.0"]["warnings"]
    assert warnings == [*noted[:19], "... and 6 more warnings"]  # the first 19, then a count
    assert done["b1.1"]["warnings"] == []


async def test_a_job_skipped_in_its_worker_process_ends_skipped_with_its_reason(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    await run(
        ex,
        dispatch(0, {"skip_reason": "nothing to take"}),
        dispatch(1, {"skip_reason": "nothing to sleep"}, job_type="demo.sleep"),
    )
    await drain(ex)
    done = outcomes(out)
    assert done["b1.0"]["type"] == "JobSkipped"
    reason = done["b1.0"]["reason"]
    assert reason.startswith("nothing to take (worker pid ")
    assert int(reason.rsplit(" ", 1)[1].rstrip(")")) != os.getpid()  # said in the worker
    assert (done["b1.1"]["type"], done["b1.1"]["reason"]) == ("JobSkipped", "nothing to sleep")
    assert ex.slots_free == ex.slots


async def test_hogs_fail_alone_naming_their_limit(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    await run(
        ex,
        dispatch(0, {"mb": 16, "seconds": 0.5}),
        dispatch(1, {"mb": 512}),
        dispatch(2, {"cpu_burn_s": 120}),
        dispatch(3, {"seconds": 0.5}, job_type="demo.sleep"),
    )
    await drain(ex)
    done = outcomes(out)
    assert done["b1.0"]["type"] == "JobCompleted"
    assert done["b1.0"]["output"]["allocated_mb"] == 16
    assert int(done["b1.0"]["output"]["worker_pid"]) != os.getpid()
    # what its worker used, by the kernel's accounting: the 16 MB it touched at least
    assert done["b1.0"]["resources"]["max_rss_mb"] >= 16
    assert done["b1.0"]["resources"]["cpu_s"] >= 0
    assert done["b1.3"]["resources"] == {}  # inline: its use is not its alone
    assert done["b1.3"]["type"] == "JobCompleted"
    for job_id, limit in (("b1.1", "memory"), ("b1.2", "cpu")):
        failed = done[job_id]
        assert failed["type"] == "JobFailed"
        assert failed["error_class"] == "ResourceLimitExceeded"
        assert failed["error_message"].startswith(f"{limit} limit exceeded")
        assert failed["retryable"] is False
    assert "max_memory_mb=64" in done["b1.1"]["error_message"]
    assert "max_cpu_s=1" in done["b1.2"]["error_message"]
    assert ex.slots_free == ex.slots
    assert ex.isolation is not None
    assert ex.isolation.pids == {}


async def test_progress_crosses_the_process_boundary(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    await run(ex, dispatch(0, {"mb": 4}))
    await drain(ex)
    messages = [m.envelope.data["message"] for m in out.of_type("JobProgress")]
    assert messages[0].startswith("worker pid ")
    assert messages[1] == "holding 4 MB"


async def test_the_hard_timeout_kills_the_worker_and_is_not_retried(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    limits = ResourceLimits(timeout_s=1)
    await run(ex, dispatch(0, {"seconds": 30}, resource_limits=limits))
    await asyncio.sleep(0.5)
    assert ex.isolation is not None
    pid = ex.isolation.pids["b1.0"]
    assert alive(pid)
    assert ex.heartbeat().envelope.data["slots_free"] == ex.slots - 1
    await drain(ex)
    failed = outcomes(out)["b1.0"]
    assert failed["error_class"] == "ResourceLimitExceeded"
    assert failed["error_message"].startswith("time limit exceeded")
    assert failed["retryable"] is False
    assert not alive(pid)
    assert ex.heartbeat().envelope.data["slots_free"] == ex.slots


async def test_the_batch_timeout_stays_the_retryable_job_timeout(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    await run(ex, dispatch(0, {"seconds": 30}, timeout_s=0.5))
    await drain(ex)
    failed = outcomes(out)["b1.0"]
    assert failed["error_class"] == "JobTimeout"
    assert failed["retryable"] is True


async def test_an_inline_job_gets_the_hard_timeout_too(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    limits = ResourceLimits(timeout_s=0.3, max_memory_mb=1)  # memory: not for inline jobs
    await run(ex, dispatch(0, {"seconds": 5}, job_type="demo.sleep", resource_limits=limits))
    await drain(ex)
    failed = outcomes(out)["b1.0"]
    assert failed["error_class"] == "ResourceLimitExceeded"
    assert failed["error_message"].startswith("time limit exceeded")


async def test_cancel_ends_the_worker_and_the_job_is_cancelled(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    ex, out = executor
    await run(ex, dispatch(0, {"seconds": 30, "mb": 8}), dispatch(1, {"cpu_burn_s": 30}))
    await asyncio.sleep(0.5)
    assert ex.isolation is not None
    pids = dict(ex.isolation.pids)
    assert set(pids) == {"b1.0", "b1.1"}
    began = time.monotonic()
    cancel = CancelBroadcast(batch_id="b1")
    await ex.control([(envelope_for(cancel, producer="s"), cancel)])
    await drain(ex, within_s=5)
    assert time.monotonic() - began < 10
    done = outcomes(out)
    for job_id in pids:
        assert done[job_id]["cancelled"] is True
        assert done[job_id]["error_class"] == "Cancelled"
    assert not any(alive(pid) for pid in pids.values())
    assert ex.slots_free == ex.slots


async def test_per_job_overhead_of_a_worker_process(
    executor: tuple[Executor, RecordingPublisher],
) -> None:
    """The figure in docs/job-types.md: what a no-op job costs in a worker process (fork,
    limits, request and answer), as the job's own duration, one job at a time."""
    ex, out = executor
    n = 20
    for i in range(n):
        await run(ex, dispatch(i, {}))
        await drain(ex)
    durations = sorted(m.envelope.data["duration_ms"] for m in out.of_type("JobCompleted"))
    assert len(durations) == n
    median = durations[n // 2]
    print(f"process-isolated no-op job: median {median:.1f} ms, max {durations[-1]:.1f} ms")
    assert median < 250  # forking an interpreter per job would take seconds


HOST = """
import asyncio, sys
from executor.adapters.isolation import ProcessIsolation
from executor.domain.worker_protocol import WorkerRequest

async def main() -> None:
    isolation = ProcessIsolation(["jobtypes.allocate"])
    request = WorkerRequest("jobtypes.allocate:DemoAllocate", "b.0", "b", 1, {"seconds": 60})

    async def progress(percent: float | None, message: str) -> None:
        print(isolation._server.pid, isolation.pids["b.0"], flush=True)

    await isolation.run(request, None, progress)

asyncio.run(main())
"""


async def test_a_killed_executor_leaves_no_workers_behind() -> None:
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOST, stdout=asyncio.subprocess.PIPE
    )
    assert host.stdout is not None
    line = await asyncio.wait_for(host.stdout.readline(), 30)
    server, worker = (int(pid) for pid in line.split())
    assert alive(server)
    assert alive(worker)
    host.kill()
    await host.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not alive(server) and not alive(worker):
            break
        await asyncio.sleep(0.05)
    assert not alive(server), "the fork server outlived its executor"
    assert not alive(worker), "a worker outlived its executor"


async def test_a_job_type_that_cannot_load_fails_its_jobs_not_the_fork_server() -> None:
    isolation = ProcessIsolation(["no_such_jobtype_module"])
    try:
        await isolation.start()
        broken = WorkerRequest("no_such_jobtype_module:Nothing", "b.0", "b", 1, {})
        with pytest.raises(JobError) as failed:
            await isolation.run(broken, None, _ignore)
        assert failed.value.error_class == "ModuleNotFoundError"
        assert failed.value.retryable is False
        working = WorkerRequest("jobtypes.allocate:DemoAllocate", "b.1", "b", 1, {"mb": 1})
        assert (await isolation.run(working, None, _ignore))["allocated_mb"] == 1
    finally:
        await isolation.close()


async def _ignore(percent: float | None, message: str) -> None:
    return None
