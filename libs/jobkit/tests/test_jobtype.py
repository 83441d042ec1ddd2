"""The job-type SDK: the decorator, output shaping, rollback hooks and discovery."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from contracts.vocabulary import SEVERITIES as EVENT_SEVERITIES
from jobkit import (
    JobContext,
    JobType,
    PermanentError,
    Resources,
    RetryableError,
    discover_job_types,
    job_type,
)
from jobkit.errors import SEVERITIES
from jobkit.jobtype import MAX_OUTPUT_BYTES

pytestmark = pytest.mark.unit


class In(BaseModel):
    n: int


class Out(BaseModel):
    doubled: int


class Ctx:
    job_id = "b.0"
    batch_id = "b"
    attempt = 1
    params: dict[str, Any] = {}
    cancel_requested = False

    def __init__(self) -> None:
        self.warnings: list[str] = []

    async def report_progress(self, percent: float | None = None, message: str = "") -> None:
        return None

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@job_type("test.double", input=In, output=Out)
async def double(item: In, ctx: JobContext) -> Out:
    """Doubles n.

    More words."""
    return Out(doubled=item.n * 2)


@job_type("test.wrong", input=In, output=Out)
async def wrong(item: In, ctx: JobContext) -> dict[str, Any]:
    return {"tripled": item.n * 3}


async def test_a_decorated_function_is_a_job_type_class() -> None:
    assert issubclass(double, JobType)
    instance = double()
    assert instance.name == "test.double"
    assert instance.description == "Doubles n."
    assert await instance.run(In(n=4), Ctx()) == {"doubled": 8}
    assert instance.output_schema() == Out.model_json_schema()
    assert not instance.supports_rollback()


async def test_an_output_that_breaks_its_model_is_an_error() -> None:
    with pytest.raises(ValidationError):
        await wrong().run(In(n=1), Ctx())


def test_a_sync_function_is_refused() -> None:
    with pytest.raises(TypeError, match="async"):
        job_type("x.y", input=In)(lambda item, ctx: None)  # type: ignore[arg-type,return-value]


def test_rollback_needs_both_hooks() -> None:
    class OnlyBackup(JobType):
        name = "t.b"
        Input = In

        async def backup(self, item: Any, ctx: JobContext) -> dict[str, Any] | None:
            return {}

    class Both(OnlyBackup):
        async def compensate(self, item: Any, backup: dict[str, Any], ctx: JobContext) -> None:
            return None

    assert not OnlyBackup.supports_rollback()
    assert Both.supports_rollback()


def test_settings_for_job_types_come_from_prefixed_variables() -> None:
    res = Resources.from_environ(None, {"BATCHYARD_JOBTYPE_HTTP_ALLOW": "127.0.0.1", "PATH": "/"})
    assert res.settings == {"http_allow": "127.0.0.1"}


def test_installed_plugins_are_discovered() -> None:
    """The example plugin (installed by `make install`) and the built-ins are found."""
    found = discover_job_types()
    assert {"demo.sleep", "hello.greet"} <= set(found)
    assert found["hello.greet"].Output is not None


@job_type("test.echo", input=In)
async def echo(item: In, ctx: JobContext) -> dict[str, Any]:
    return {"text": "z" * item.n}


async def test_an_output_too_large_for_an_event_fails_the_job_for_good() -> None:
    """A result sent in `JobCompleted` over Kafka's message limit could never be reported
    (the job would be run again and again as its lease ran out): it fails, permanently."""
    kind = echo()
    assert await kind.run(kind.parse_input({"n": 10}), Ctx()) == {"text": "z" * 10}
    with pytest.raises(PermanentError, match="more than the 524,288") as info:
        await kind.run(kind.parse_input({"n": MAX_OUTPUT_BYTES}), Ctx())
    assert info.value.error_class == "OutputTooLarge"


def test_a_job_error_takes_the_severities_the_events_carry() -> None:
    assert SEVERITIES == EVENT_SEVERITIES
    assert PermanentError("x", severity="low").severity == "low"
    assert RetryableError("x").severity is None  # the default decides
    with pytest.raises(ValueError, match="severity must be one of"):
        PermanentError("x", severity="fatal")  # type: ignore[arg-type]
