"""Reading what a newer version wrote: unknown fields ignored at any depth, nothing else."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.tolerant import validate_tolerantly
from contracts.vocabulary import BatchConfig

pytestmark = pytest.mark.unit


def test_unknown_fields_at_every_depth_are_ignored_and_the_rest_kept() -> None:
    stored = {
        "max_concurrent_jobs": 7,
        "new_top": 1,
        "retry": {"max_attempts": 4, "new_in_retry": "x"},
        "notifications": [
            {"url": "https://example.test/a"},
            {"url": "https://example.test/b", "on_start": True, "new_in_hook": []},
        ],
        "params": {"free_form": "kept"},
    }
    config = validate_tolerantly(BatchConfig, stored)
    assert config.max_concurrent_jobs == 7
    assert config.retry.max_attempts == 4
    assert config.notifications[1].on_start is True
    assert config.params == {"free_form": "kept"}  # a free-form dict keeps what it holds
    assert stored["retry"] == {"max_attempts": 4, "new_in_retry": "x"}  # the input is untouched


def test_a_known_field_that_is_wrong_still_fails() -> None:
    with pytest.raises(ValidationError) as info:
        validate_tolerantly(BatchConfig, {"new_top": 1, "max_concurrent_jobs": 0})
    assert [e["loc"] for e in info.value.errors()] == [("max_concurrent_jobs",)]


def test_the_api_still_refuses_unknown_fields() -> None:
    """The same model, validated as the API does, refuses a typo."""
    with pytest.raises(ValidationError, match="max_concurent_jobs"):
        BatchConfig.model_validate({"max_concurent_jobs": 3})
