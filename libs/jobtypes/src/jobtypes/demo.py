"""`demo.sleep`: sleeps and fails on request. For demos, benchmarks and chaos tests."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobkit import JobContext, JobType, PermanentError, RetryableError


class SleepInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=0.0, ge=0, le=3600, description="How long the job sleeps.")
    fail_probability: float = Field(default=0.0, ge=0, le=1)
    fail_first_attempts: int = Field(
        default=0, ge=0, description="Fail every attempt up to this number, then succeed."
    )
    fail_with: Literal["retryable", "permanent"] = "retryable"


class DemoSleep(JobType):
    name = "demo.sleep"
    Input = SleepInput
    description = "Sleeps for `seconds`; fails on request. For demos, benchmarks and chaos tests."

    async def run(self, item: SleepInput, ctx: JobContext) -> dict[str, Any]:
        if item.seconds:
            await asyncio.sleep(item.seconds)
        failing = ctx.attempt <= item.fail_first_attempts or (
            item.fail_probability and random.random() < item.fail_probability
        )
        if failing:
            error = RetryableError if item.fail_with == "retryable" else PermanentError
            raise error(f"demo failure on attempt {ctx.attempt}", error_class="DemoFailure")
        return {"slept_s": item.seconds, "attempt": ctx.attempt}
