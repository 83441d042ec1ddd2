"""An example job type plugin: greets someone, `times` times, reporting progress.

Installed (`pip install -e examples/hello-jobtype`, which `make install` does), every executor
serves `hello.greet` and `GET /v1/job-types` lists it with its input and output schemas."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from jobkit import JobContext, PermanentError, job_type


class GreetInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Who is greeted.")
    times: int = Field(default=1, ge=1, le=100, description="How many greetings.")
    pause_s: float = Field(default=0.0, ge=0, le=10, description="Pause between greetings.")


class GreetOutput(BaseModel):
    greeting: str
    count: int


@job_type("hello.greet", input=GreetInput, output=GreetOutput)
async def greet(item: GreetInput, ctx: JobContext) -> GreetOutput:
    """Greets `name`; a name of "nobody" is a permanent failure."""
    if item.name.lower() == "nobody":
        raise PermanentError("nobody cannot be greeted", error_class="NobodyToGreet")
    lines = []
    for i in range(item.times):
        lines.append(f"Hello, {item.name}!")
        await ctx.report_progress(100 * (i + 1) / item.times)
        if item.pause_s:
            await asyncio.sleep(item.pause_s)  # a cancel arrives here
    return GreetOutput(greeting=" ".join(lines), count=item.times)


Greet = greet  # the entry point names the class the decorator made

__all__ = ["Greet", "GreetInput", "GreetOutput", "greet"]
