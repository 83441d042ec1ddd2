"""`demo.allocate`: takes memory, burns CPU and holds on for a while, in a worker process of its
own (`isolation = "process"`). It shows what a batch's `resource_limits` do: past
`max_memory_mb` or `max_cpu_s` (or `timeout_s`) the job fails with `ResourceLimitExceeded`,
and the executor and the other jobs go on. For demos and tests; never give it a batch without
`resource_limits` on a machine you care about."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobkit import JobContext, JobType
from jobtypes.noting import NotedWarnings, SkipReason, note

MB = 1024 * 1024
PAGE = 4096


class AllocateInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mb: int = Field(default=0, ge=0, le=65_536, description="Memory to take and touch, in MB.")
    seconds: float = Field(default=0.0, ge=0, le=3600, description="How long to hold it.")
    cpu_burn_s: float = Field(
        default=0.0, ge=0, le=3600, description="CPU seconds to spend computing first."
    )
    warnings: NotedWarnings
    skip_reason: SkipReason


class AllocateOutput(BaseModel):
    allocated_mb: int
    cpu_s: float
    slept_s: float
    worker_pid: str  # a string: numeric outputs become summed metrics


class DemoAllocate(JobType):
    name = "demo.allocate"
    Input = AllocateInput
    Output = AllocateOutput
    description = "Takes `mb` of memory, burns `cpu_burn_s` CPU seconds, holds for `seconds`."
    isolation = "process"

    async def run(self, item: AllocateInput, ctx: JobContext) -> dict[str, Any]:
        note(ctx, item.warnings, item.skip_reason, f" (worker pid {os.getpid()})")
        await ctx.report_progress(0, f"worker pid {os.getpid()}")
        cpu_s = await _burn(item.cpu_burn_s, ctx)
        held: list[bytearray] = []
        for _ in range(item.mb):
            chunk = bytearray(MB)
            chunk[::PAGE] = b"\x01" * (MB // PAGE)  # touch every page: resident, not reserved
            held.append(chunk)
        await ctx.report_progress(50, f"holding {len(held)} MB")
        if item.seconds:
            await asyncio.sleep(item.seconds)
        output = AllocateOutput(
            allocated_mb=len(held),
            cpu_s=round(cpu_s, 3),
            slept_s=item.seconds,
            worker_pid=str(os.getpid()),
        )
        return self.shape_output(output)


async def _burn(seconds: float, ctx: JobContext) -> float:
    """Computes until `seconds` of this process's CPU time went by, yielding to the event loop
    every few milliseconds so a cancel gets through."""
    began = time.process_time()
    spent = 0.0
    while spent < seconds and not ctx.cancel_requested:
        deadline = time.perf_counter() + 0.02
        total = 0
        while time.perf_counter() < deadline:
            total += sum(range(1000))
        await asyncio.sleep(0)
        spent = time.process_time() - began
    return spent
