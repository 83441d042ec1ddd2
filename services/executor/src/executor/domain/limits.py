"""What a batch's `resource_limits` mean for one job attempt, and what the end of a worker
process says about them. Pure: the processes themselves are in `adapters/isolation.py`."""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass

from contracts.vocabulary import ResourceLimits
from jobkit import JobError, PermanentError, ResourceLimitExceeded

MB = 1024 * 1024

# A worker that runs out of its address space exits with this code (it cannot be trusted to
# build and send a message any more). Chosen outside the codes Python and shells use.
EXIT_OUT_OF_MEMORY = 86

# The kernel sends SIGXCPU at the soft CPU limit (which ends a Python process: it keeps the
# default action) and SIGKILL at the hard one: one second later, for a worker that blocks it.
CPU_HARD_GRACE_S = 1

# A worker ends itself (SIGALRM) this long after its deadline, should its executor be gone.
ALARM_GRACE_S = 5.0


@dataclass(frozen=True)
class Deadline:
    """The wall-clock time one attempt may take. `hard`: it is `resource_limits.timeout_s`,
    whose excess is the permanent `ResourceLimitExceeded` (time); otherwise it is the batch's
    `timeout_s`, whose excess is the retryable `JobTimeout`."""

    seconds: float
    hard: bool

    def exceeded(self) -> JobError | None:
        """The error an attempt that ran past this deadline ends with; None for the soft one
        (the caller reports its `JobTimeout`)."""
        if not self.hard:
            return None
        return ResourceLimitExceeded(
            "time", f"the job ran longer than timeout_s={_number(self.seconds)}s"
        )


def attempt_deadline(timeout_s: float, limits: ResourceLimits | None) -> Deadline:
    """The smaller of the batch's `timeout_s` and `resource_limits.timeout_s`; the hard limit
    wins a tie (it is the one the batch asked to be final)."""
    hard = limits.timeout_s if limits is not None else None
    if hard is not None and hard <= timeout_s:
        return Deadline(hard, hard=True)
    return Deadline(timeout_s, hard=False)


def address_space_limit(baseline_bytes: int, max_memory_mb: int) -> int:
    """RLIMIT_AS for a worker whose address space is `baseline_bytes` before its job starts:
    the job may add `max_memory_mb`. The baseline (the interpreter and the job type's modules,
    mostly shared with the fork server) is not the job's to pay for."""
    if baseline_bytes < 0 or max_memory_mb < 1:
        raise ValueError("baseline must be >= 0 and max_memory_mb >= 1")
    return baseline_bytes + max_memory_mb * MB


def cpu_rlimit(max_cpu_s: int) -> tuple[int, int]:
    """(soft, hard) RLIMIT_CPU in whole seconds."""
    if max_cpu_s < 1:
        raise ValueError("max_cpu_s must be >= 1")
    return max_cpu_s, max_cpu_s + CPU_HARD_GRACE_S


def alarm_after(deadline: Deadline) -> int:
    """Whole seconds after which a worker ends itself: its own backstop for the wall clock,
    which the executor enforces (and kills it) first."""
    return math.ceil(deadline.seconds + ALARM_GRACE_S)


def judge_exit(exitcode: int, limits: ResourceLimits | None) -> JobError:
    """The failure of a worker that ended without reporting a result or an error: a limit
    when the way it ended names one, else `WorkerCrashed` (permanent: a job that kills its
    process would do it again)."""
    memory = limits.max_memory_mb if limits is not None else None
    cpu = limits.max_cpu_s if limits is not None else None
    if exitcode == EXIT_OUT_OF_MEMORY:
        return ResourceLimitExceeded(
            "memory", f"the job needed more than max_memory_mb={memory if memory else '?'} MB"
        )
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL) and cpu is not None:
        # SIGKILL with a CPU limit set is the hard CPU limit (the executor's own kills are
        # recorded before they happen and never reach this function).
        return ResourceLimitExceeded("cpu", f"the job used more than max_cpu_s={cpu} CPU seconds")
    if exitcode == -signal.SIGALRM:
        return ResourceLimitExceeded("time", "the worker outlived its deadline and ended itself")
    return PermanentError(
        f"the worker process ended with {describe_exit(exitcode)} before reporting a result",
        error_class="WorkerCrashed",
        severity="critical",
    )


def describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
