"""Each kind of failure has its own exit code; a monitor's code follows the final statuses."""

from __future__ import annotations

import pytest

from batchyard_cli.errors import BatchyardError, InputError, Problem, Unreachable, api_error
from batchyard_cli.exit_codes import ExitCode, for_error, for_final_statuses, worst

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, ExitCode.REJECTED),
        (401, ExitCode.AUTH),
        (403, ExitCode.AUTH),
        (404, ExitCode.NOT_FOUND),
        (405, ExitCode.REJECTED),
        (409, ExitCode.REJECTED),
        (413, ExitCode.REJECTED),
        (418, ExitCode.REJECTED),
        (422, ExitCode.REJECTED),
        (429, ExitCode.SERVER),
        (500, ExitCode.SERVER),
        (503, ExitCode.SERVER),
    ],
)
def test_http_status_to_exit_code(status: int, code: ExitCode) -> None:
    assert for_error(api_error(Problem(status, "t", "d"))) == code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("bad file"), ExitCode.USAGE),
        (Unreachable("refused"), ExitCode.SERVER),
        (BatchyardError("other"), ExitCode.SERVER),
    ],
)
def test_local_failures_to_exit_code(error: BatchyardError, code: ExitCode) -> None:
    assert for_error(error) == code


def test_codes_are_distinct_and_documented() -> None:
    from batchyard_cli.exit_codes import EXIT_CODES_HELP

    values = [int(c) for c in ExitCode]
    assert len(values) == len(set(values))
    for code in values:
        assert f"{code} " in EXIT_CODES_HELP


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["completed"], ExitCode.OK),
        (["completed", "completed"], ExitCode.OK),
        ([], ExitCode.OK),
        (["completed", "completed_with_errors"], ExitCode.UNSUCCESSFUL),
        (["failed"], ExitCode.UNSUCCESSFUL),
        (["cancelled"], ExitCode.UNSUCCESSFUL),
        (["rolled_back"], ExitCode.UNSUCCESSFUL),
    ],
)
def test_final_statuses_to_exit_code(statuses: list[str], code: ExitCode) -> None:
    assert for_final_statuses(statuses) == code


def test_worst_of_several() -> None:
    assert worst([]) == ExitCode.OK
    assert worst([ExitCode.NOT_FOUND, ExitCode.OK, ExitCode.REJECTED]) == ExitCode.REJECTED
