"""The create body: a spec overridden by flags, priorities, params."""

from __future__ import annotations

import pytest

from batchyard_cli.creation import BatchOptions, batch_body, parse_param, parse_priority
from batchyard_cli.errors import InputError

pytestmark = pytest.mark.unit

SPEC = {
    "name": "from spec",
    "job_type": "demo.sleep",
    "priority": "low",
    "items": [{"seconds": 1}],
    "config": {"max_concurrent_jobs": 2, "retry": {"max_attempts": 5, "multiplier": 3}},
}


def test_flags_override_the_spec_field_by_field() -> None:
    body = batch_body(
        SPEC,
        BatchOptions(
            name="from flags",
            priority="9",
            tags=["a", "b"],
            max_concurrent_jobs=8,
            max_attempts=2,
            stop_on_error=True,
            params=["n=3", "mode=fast"],
            items=[{"seconds": 2}],
        ),
    )
    assert body == {
        "name": "from flags",
        "job_type": "demo.sleep",
        "priority": 9,
        "tags": ["a", "b"],
        "items": [{"seconds": 1}, {"seconds": 2}],
        "config": {
            "max_concurrent_jobs": 8,
            "retry": {"max_attempts": 2, "multiplier": 3},
            "stop_on_error": True,
            "params": {"n": 3, "mode": "fast"},
        },
    }


def test_the_spec_alone_is_sent_as_written() -> None:
    assert batch_body(SPEC, BatchOptions()) == SPEC


def test_a_batch_needs_a_name_and_a_job_type() -> None:
    with pytest.raises(InputError, match="--name and --job-type"):
        batch_body({}, BatchOptions())
    assert "items" not in batch_body({}, BatchOptions(name="n", job_type="t"))


@pytest.mark.parametrize(("text", "value"), [("low", "low"), ("critical", "critical"), ("10", 10)])
def test_priorities(text: str, value: str | int) -> None:
    assert parse_priority(text) == value


@pytest.mark.parametrize("text", ["urgent", "0", "11", ""])
def test_bad_priorities(text: str) -> None:
    with pytest.raises(InputError, match="priority must be one of"):
        parse_priority(text)


def test_params() -> None:
    assert parse_param("a=[1, 2]") == ("a", [1, 2])
    assert parse_param("b=x=y") == ("b", "x=y")
    with pytest.raises(InputError):
        parse_param("novalue")
