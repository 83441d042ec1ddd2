"""The job type base class, the decorator for function job types, and what a running job sees."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import BaseModel
from pydantic_core import to_json

from jobkit.errors import PermanentError

ENTRY_POINT_GROUP = "batchyard.job_types"
# The most a job's output may take as JSON: it is sent in `JobCompleted`, and Kafka refuses
# messages over 1 MiB by default.
MAX_OUTPUT_BYTES = 512 * 1024

BACKUP_STRATEGIES = ("automatic", "manual", "none")

Isolation = Literal["inline", "process"]
ISOLATIONS: tuple[Isolation, ...] = ("inline", "process")


class JobContext(Protocol):
    """What a running job may know and do.

    `params` are the batch's `config.params` (shared by every job of the batch). Cancellation
    arrives as `asyncio.CancelledError` at the job's next await point; a job that computes for
    long stretches without awaiting checks `cancel_requested` and returns early."""

    job_id: str
    batch_id: str
    attempt: int
    params: dict[str, Any]

    @property
    def cancel_requested(self) -> bool:
        """True once a cancel for this job arrived."""

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        """Publishes progress for this job; also renews its lease."""

    def warn(self, message: str) -> None:
        """Records a warning about this item: something odd but not fatal (a field left at
        its default, a duplicate ignored). The job goes on; its outcome carries its warnings
        (the first 20, each cut at 500 characters), shown with the job and counted in the
        batch's report."""


@dataclass
class Resources:
    """What a host process (an executor, the rollback service) gives its job types once at
    start, through `JobType.setup`: the store (a pymongo `AsyncDatabase`, or None where the
    host has none) and settings for job types (`BATCHYARD_JOBTYPE_*` environment variables,
    lower-cased without the prefix)."""

    store: Any = None
    settings: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, store: Any, environ: Mapping[str, str]) -> Resources:
        prefix = "BATCHYARD_JOBTYPE_"
        settings = {k[len(prefix) :].lower(): v for k, v in environ.items() if k.startswith(prefix)}
        return cls(store=store, settings=settings)


class JobType:
    """Base class of job types. Subclasses set `name` and `Input` and implement `run`.

    Optional: `Output` (a model the result is validated against), `setup` (once per process,
    before the first job), `isolation`, and the rollback pair `backup` / `compensate`:

    - `isolation = "inline"` (the default) runs jobs as tasks in the host's event loop.
      `isolation = "process"` runs each job in a worker process of its own, where the batch's
      `resource_limits` (memory, CPU seconds) are enforced by the OS and a job that goes past
      them, or crashes, fails alone. Such a job type gets no store in `setup` (`store` is None;
      settings are given), and its input, output and progress cross the process boundary as
      JSON. `backup` / `compensate` are not called for it.

    - `backup(item, ctx)` returns a JSON-able snapshot of what `run` is about to change, or
      None when there is nothing to keep. With the batch's `backup_strategy: automatic` the
      executor calls it before `run` and stores the snapshot with its checksum.
    - `compensate(item, backup, ctx)` undoes the job's change from that snapshot. It must be
      idempotent: a rollback that is interrupted runs it again.
    - `state_of(item, backup, ctx)` and `state_in(item, backup)` (optional, together) digest,
      per key, the current state of what `compensate` would overwrite and the state it
      restores (`servicekit.backups.digest_of`). The executor records `state_of` when the job
      completes; a rollback compares it with the state then and refuses to overwrite a key
      that changed after the job (neither what the job left nor already restored), unless it
      is forced."""

    name: ClassVar[str]
    Input: ClassVar[type[BaseModel]]
    Output: ClassVar[type[BaseModel] | None] = None
    description: ClassVar[str] = ""
    isolation: ClassVar[Isolation] = "inline"

    async def setup(self, resources: Resources) -> None:
        """Called once in each process that hosts this job type, before it is used."""

    async def run(self, item: Any, ctx: JobContext) -> dict[str, Any]:
        raise NotImplementedError

    async def backup(self, item: Any, ctx: JobContext) -> dict[str, Any] | None:
        return None

    async def compensate(self, item: Any, backup: dict[str, Any], ctx: JobContext) -> None:
        raise NotImplementedError(f"{self.name} cannot be rolled back")

    async def state_of(
        self, item: Any, backup: dict[str, Any], ctx: JobContext
    ) -> dict[str, str] | None:
        """Digests (by key) of the current state of what `compensate(item, backup)` would
        overwrite; None when this job type cannot tell (then nothing is checked)."""
        return None

    def state_in(self, item: Any, backup: dict[str, Any]) -> dict[str, str] | None:
        """Digests (by key, as `state_of` gives them) of the state `compensate(item, backup)`
        restores; None when this job type cannot tell."""
        return None

    @classmethod
    def supports_rollback(cls) -> bool:
        """Whether the job type defines both `backup` and `compensate`."""
        return cls.backup is not JobType.backup and cls.compensate is not JobType.compensate

    @classmethod
    def input_schema(cls) -> dict[str, Any]:
        return cls.Input.model_json_schema()

    @classmethod
    def output_schema(cls) -> dict[str, Any] | None:
        return cls.Output.model_json_schema() if cls.Output is not None else None

    def parse_input(self, raw: Mapping[str, Any]) -> BaseModel:
        return self.Input.model_validate(dict(raw))

    def shape_output(self, output: Any) -> dict[str, Any]:
        """The job's result as a dict, validated against `Output` when one is declared. A
        result over `MAX_OUTPUT_BYTES` of JSON fails the job (`OutputTooLarge`, permanent):
        it travels in an event, and Kafka takes no message over 1 MiB by default."""
        if isinstance(output, BaseModel):
            output = output.model_dump(mode="json")
        if output is None:
            output = {}
        if self.Output is not None:
            output = self.Output.model_validate(output).model_dump(mode="json")
        elif not isinstance(output, dict):
            raise TypeError(f"{self.name} returned {type(output).__name__}, not a dict")
        size = len(to_json(output, fallback=str))
        if size > MAX_OUTPUT_BYTES:
            raise PermanentError(
                f"the job's output is {size:,} bytes as JSON, more than the "
                f"{MAX_OUTPUT_BYTES:,} an event may carry; store a large result elsewhere "
                "(a file, a bucket) and return where it is",
                error_class="OutputTooLarge",
            )
        return dict(output)


InputT = TypeVar("InputT", bound=BaseModel)
RunFunction = Callable[[Any, JobContext], Awaitable[Any]]


def job_type(
    name: str,
    *,
    input: type[BaseModel],
    output: type[BaseModel] | None = None,
    description: str = "",
    isolation: Isolation = "inline",
) -> Callable[[RunFunction], type[JobType]]:
    """Turns an async function `(item, ctx) -> dict | Output` into a job type class, which is
    what the entry point names:

        @job_type("text.upper", input=UpperInput, output=UpperOutput)
        async def upper(item: UpperInput, ctx: JobContext) -> UpperOutput:
            return UpperOutput(text=item.text.upper())
    """

    if isolation not in ISOLATIONS:
        raise ValueError(f"job type {name!r}: isolation must be one of {ISOLATIONS}")

    def wrap(fn: RunFunction) -> type[JobType]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"job type {name!r}: {fn.__qualname__} must be an async function")

        async def run(self: JobType, item: Any, ctx: JobContext) -> dict[str, Any]:
            return self.shape_output(await fn(item, ctx))

        attrs: dict[str, Any] = {
            "name": name,
            "Input": input,
            "Output": output,
            "description": description or (inspect.getdoc(fn) or "").split("\n\n")[0],
            "run": run,
            "isolation": isolation,
            "__module__": fn.__module__,
            "__doc__": fn.__doc__,
        }
        return type(fn.__name__, (JobType,), attrs)

    return wrap
