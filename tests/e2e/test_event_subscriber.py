"""Another system subscribing to Batchyard's events: the example subscriber
(examples/subscriber/follow_batches.py), run as its README says, follows a real batch on the
real broker to its end, and a second run in the same group resumes after what it handled."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from stack_support import Stack

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "subscriber" / "follow_batches.py"


async def run_subscriber(*args: str, timeout: float = 90) -> tuple[int, list[str], str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines(), err.decode()


async def test_the_example_subscriber_follows_a_batch_to_its_end(
    api: httpx.AsyncClient, stack: Stack, kafka_bootstrap: str
) -> None:
    created = await api.post(
        "/v1/batches",
        json={
            "name": "followed from kafka",
            "job_type": "demo.sleep",
            "items": [{"seconds": 0.05}] * 4 + [{"fail_first_attempts": 1}],
            "config": {"retry": {"backoff_initial_s": 0.1}},
        },
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    group = f"follow-{uuid.uuid4().hex[:8]}"
    common = ("--bootstrap", kafka_bootstrap, "--prefix", stack.prefix, "--group", group)

    code, lines, err = await run_subscriber(
        *common, "--batch", batch_id, "--until-ended", "--max-seconds", "60"
    )

    assert code == 0, err
    assert all(batch_id in line for line in lines)
    kinds = [line.split()[2] for line in lines]
    assert kinds[0] == "BatchStarted"
    assert kinds[-1] == "BatchCompleted"
    assert lines[-1].split()[3:] == ["completed", "5/5", "ended"]
    ended = [int(line.split()[4].split("/")[0]) for line in lines]
    assert ended == sorted(ended)  # in order, no repeats shown

    # The same group again: its offsets were committed after handling, so nothing of the
    # batch is new. (Only the batch's: the first run stopped at its end, and other batches'
    # partitions may still hold events it had not reached; CI saw those once.)
    code, lines, err = await run_subscriber(*common, "--batch", batch_id, "--max-seconds", "4")
    assert (code, lines) == (2, [])
    assert "stopped after 4 s" in err
