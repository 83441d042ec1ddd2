"""Writing a Batchyard job type.

A job type subclasses `JobType`, names itself, declares a pydantic `Input` model and
implements `run`. It is registered under the entry-point group `batchyard.job_types`; every
executor that has the package installed discovers it at start and announces it.

    class Resize(JobType):
        name = "images.resize"
        Input = ResizeInput

        async def run(self, item: ResizeInput, ctx: JobContext) -> dict[str, Any]:
            ...
            await ctx.report_progress(50)
            ...
            return {"bytes": n}

An async function works too, with `@job_type("images.resize", input=ResizeInput)`.

Raise `RetryableError` for failures worth another attempt (timeouts, 5xx) and
`PermanentError` for the rest; any other exception counts as permanent. Raise `SkipJob(reason)`
when an item needs no work: the job ends `skipped`, not failed. Raise `AwaitingDecision` when
the rest of a job's work waits for a person: it stops nothing, and a decision runs it again.
A job type that sets `isolation = "process"` runs each job in a worker process under the
batch's resource limits.
Cancellation arrives as `asyncio.CancelledError` at an await point: let it propagate.
`backup`/`compensate` make a job type's changes undoable by the rollback service.
docs/job-types.md has the whole guide.
"""

from jobkit.discovery import discover_job_types
from jobkit.errors import (
    AwaitingDecision,
    JobError,
    Limit,
    PermanentError,
    ResourceLimitExceeded,
    RetryableError,
    Severity,
    SkipJob,
)
from jobkit.jobtype import (
    BACKUP_STRATEGIES,
    ENTRY_POINT_GROUP,
    ISOLATIONS,
    Isolation,
    JobContext,
    JobType,
    Resources,
    job_type,
)

__all__ = [
    "BACKUP_STRATEGIES",
    "ENTRY_POINT_GROUP",
    "ISOLATIONS",
    "AwaitingDecision",
    "Isolation",
    "JobContext",
    "JobError",
    "JobType",
    "Limit",
    "PermanentError",
    "ResourceLimitExceeded",
    "Resources",
    "RetryableError",
    "Severity",
    "SkipJob",
    "discover_job_types",
    "job_type",
]
