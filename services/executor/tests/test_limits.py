"""The pure parts of per-job resource limits: which deadline applies, the rlimits a worker
sets, how a worker's end is judged, and the JSON that crosses the process boundary."""

from __future__ import annotations

import signal

import pytest
from pydantic import BaseModel, ValidationError

from contracts.events.execution import MAX_TRACEBACK
from contracts.vocabulary import BatchConfig, ResourceLimits
from executor.domain.limits import (
    EXIT_OUT_OF_MEMORY,
    MB,
    Deadline,
    address_space_limit,
    alarm_after,
    attempt_deadline,
    cpu_rlimit,
    describe_exit,
    judge_exit,
)
from executor.domain.worker_protocol import (
    Failure,
    Progress,
    ProtocolError,
    Result,
    WorkerRequest,
    decode,
    encode,
    failure_of,
)
from jobkit import (
    AwaitingDecision,
    JobContext,
    PermanentError,
    ResourceLimitExceeded,
    RetryableError,
    job_type,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("timeout_s", "limits", "expected"),
    [
        (300, None, Deadline(300, hard=False)),
        (300, ResourceLimits(max_memory_mb=64), Deadline(300, hard=False)),
        (300, ResourceLimits(timeout_s=10), Deadline(10, hard=True)),
        (5, ResourceLimits(timeout_s=10), Deadline(5, hard=False)),
        (10, ResourceLimits(timeout_s=10), Deadline(10, hard=True)),
    ],
)
def test_the_smaller_timeout_applies_and_the_hard_one_wins_a_tie(
    timeout_s: float, limits: ResourceLimits | None, expected: Deadline
) -> None:
    assert attempt_deadline(timeout_s, limits) == expected


def test_only_the_hard_deadline_is_a_permanent_limit() -> None:
    assert Deadline(300, hard=False).exceeded() is None
    error = Deadline(2.5, hard=True).exceeded()
    assert isinstance(error, ResourceLimitExceeded)
    assert error.limit == "time"
    assert not error.retryable
    assert error.error_class == "ResourceLimitExceeded"
    assert "timeout_s=2.5s" in str(error)
    assert "timeout_s=10s" in str(Deadline(10, hard=True).exceeded())


def test_rlimits_add_the_job_allowance_to_the_worker_baseline() -> None:
    assert address_space_limit(50 * MB, 64) == 114 * MB
    assert cpu_rlimit(3) == (3, 4)
    assert alarm_after(Deadline(10, hard=True)) == 15
    assert alarm_after(Deadline(0.2, hard=False)) == 6
    with pytest.raises(ValueError, match="max_memory_mb"):
        address_space_limit(0, 0)
    with pytest.raises(ValueError, match="max_cpu_s"):
        cpu_rlimit(0)


LIMITS = ResourceLimits(max_memory_mb=64, max_cpu_s=2, timeout_s=30)


@pytest.mark.parametrize(
    ("exitcode", "limits", "limit"),
    [
        (EXIT_OUT_OF_MEMORY, LIMITS, "memory"),
        (-signal.SIGXCPU, LIMITS, "cpu"),
        (-signal.SIGKILL, LIMITS, "cpu"),
        (-signal.SIGALRM, LIMITS, "time"),
        (-signal.SIGALRM, None, "time"),
    ],
)
def test_a_worker_ended_by_a_limit_names_it(
    exitcode: int, limits: ResourceLimits | None, limit: str
) -> None:
    error = judge_exit(exitcode, limits)
    assert isinstance(error, ResourceLimitExceeded)
    assert error.limit == limit
    assert str(error).startswith(f"{limit} limit exceeded")
    assert error.retryable is False


@pytest.mark.parametrize(
    ("exitcode", "limits", "said"),
    [
        (-signal.SIGSEGV, LIMITS, "SIGSEGV"),
        (-signal.SIGKILL, ResourceLimits(max_memory_mb=64), "SIGKILL"),
        (1, LIMITS, "exit code 1"),
        (0, None, "exit code 0"),
    ],
)
def test_any_other_end_is_a_permanent_crash(
    exitcode: int, limits: ResourceLimits | None, said: str
) -> None:
    error = judge_exit(exitcode, limits)
    assert not isinstance(error, ResourceLimitExceeded)
    assert error.error_class == "WorkerCrashed"
    assert not error.retryable
    assert said in str(error)
    assert describe_exit(-99) == "signal 99"


def test_the_request_crosses_as_json_and_back() -> None:
    request = WorkerRequest(
        "jobtypes.allocate:DemoAllocate", "b.1", "b", 2, {"mb": 8}, {"k": [1]}, 64, 2, 35
    )
    assert WorkerRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize(
    "message",
    [
        Progress(12.5, "working"),
        Progress(None, ""),
        Result({"n": 1, "nested": {"a": [1, "x"]}}),
        Failure("NotFound", "gone", False),
        Failure("AwaitingDecision", "1 conflict", False, None, "low", awaiting_decision=True),
    ],
)
def test_messages_cross_as_one_json_line(message: Progress | Result | Failure) -> None:
    line = encode(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode(line) == message


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b'{"kind": "nope"}\n', b'{"kind": "result", "output": [1]}\n', b"{}\n"],
)
def test_an_unreadable_line_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(line)


class _Strict(BaseModel):
    n: int


def test_job_exceptions_are_reported_by_the_executor_rules() -> None:
    with pytest.raises(ValidationError) as invalid:
        _Strict.model_validate({"n": "x"})
    assert failure_of(RetryableError("later", error_class="Busy")) == Failure("Busy", "later", True)
    assert failure_of(PermanentError("no")).error_class == "PermanentError"
    assert failure_of(TimeoutError()) == Failure("JobTimeout", "timed out", True)
    assert failure_of(invalid.value).error_class == "InvalidInput"
    unexpected = failure_of(KeyError("k"))
    assert (unexpected.error_class, unexpected.message, unexpected.retryable) == (
        "KeyError",
        "'k'",
        False,
    )
    error = Failure("Busy", "later", True).to_error()
    assert isinstance(error, RetryableError)
    assert error.error_class == "Busy"
    assert error.trace is None


def test_a_job_awaiting_a_decision_stays_one_across_the_worker_boundary() -> None:
    failure = failure_of(AwaitingDecision("1 conflict awaits a decision: c_1"))
    assert failure == Failure(
        "AwaitingDecision",
        "1 conflict awaits a decision: c_1",
        False,
        severity="low",
        awaiting_decision=True,
    )
    error = decode(encode(failure))
    assert isinstance(error, Failure)
    assert isinstance(error.to_error(), AwaitingDecision)
    assert not failure_of(PermanentError("no")).awaiting_decision


def test_an_unexpected_exception_keeps_where_it_was_raised_across_the_worker_boundary() -> None:
    def deep(n: int) -> None:
        if n == 0:
            # its cause comes first in the trace, and is far longer than a JobFailed carries
            raise KeyError("missing") from ValueError("x" * 2 * MAX_TRACEBACK)
        deep(n - 1)

    try:
        deep(3)
    except KeyError as exc:
        failure = failure_of(exc)
    assert failure.traceback is not None
    assert len(failure.traceback) <= MAX_TRACEBACK
    assert failure.traceback.startswith("…")
    assert failure.traceback.endswith("KeyError: 'missing'"), "the raising frame is kept"
    assert "in deep" in failure.traceback
    read = decode(encode(failure))
    assert read == failure
    assert read.to_error().trace == failure.traceback


def test_resource_limits_are_an_optional_part_of_the_batch_config() -> None:
    assert BatchConfig().resource_limits is None
    config = BatchConfig.model_validate({"resource_limits": {"max_memory_mb": 64}})
    assert config.resource_limits == ResourceLimits(max_memory_mb=64)
    for bad in ({"max_memory_mb": 0}, {"max_cpu_s": 1.5}, {"timeout_s": -1}, {"cpu": 1}):
        with pytest.raises(ValidationError):
            BatchConfig.model_validate({"resource_limits": bad})


def test_a_function_job_type_can_ask_for_process_isolation() -> None:
    @job_type("test.isolated", input=_Strict, isolation="process")
    async def isolated(item: _Strict, ctx: JobContext) -> dict[str, int]:
        return {"n": item.n}

    assert isolated.isolation == "process"
    with pytest.raises(ValueError, match="isolation"):
        job_type("test.bad", input=_Strict, isolation="thread")  # type: ignore[arg-type]
