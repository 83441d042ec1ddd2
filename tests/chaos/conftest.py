"""An isolated copy of the system for chaos tests: three executors, short leases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chaos_support import CHAOS_ENV
from stack_support import Stack, isolated_stack

EXECUTORS = 3


@pytest.fixture
def chaos_stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, mongodb_server: str
) -> Iterator[Stack]:
    """Parametrize indirectly with a dict to add environment variables to every service."""
    extra_env: dict[str, str] = getattr(request, "param", {})
    with isolated_stack(
        "chaos",
        kafka_bootstrap,
        mongodb_server,
        executors=EXECUTORS,
        extra_env={**CHAOS_ENV, **extra_env},
    ) as stack:
        yield stack
