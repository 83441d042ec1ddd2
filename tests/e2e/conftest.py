"""e2e tests run against the session's `stack` (tests/conftest.py): the whole system on free
ports, with its own topic prefix and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from stack_support import Stack


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, headers=stack.headers, timeout=30) as client:
        yield client
