"""The job type base class and the context a running job sees."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

ENTRY_POINT_GROUP = "batchyard.job_types"


class JobContext(Protocol):
    """What a running job may know and do."""

    job_id: str
    batch_id: str
    attempt: int
    params: dict[str, Any]

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        """Publishes progress for this job; also renews its lease."""


class JobType:
    """Base class of job types. Subclasses set `name` and `Input` and implement `run`."""

    name: ClassVar[str]
    Input: ClassVar[type[BaseModel]]
    description: ClassVar[str] = ""

    async def run(self, item: Any, ctx: JobContext) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def input_schema(cls) -> dict[str, Any]:
        return cls.Input.model_json_schema()
