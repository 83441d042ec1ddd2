"""Browser tests: Playwright (Python) driving Debian's chromium (/usr/bin/chromium, headless; no
browser download) against the session's `stack` (tests/conftest.py).

Every page records console errors and uncaught exceptions; a test fails on any it did not
declare expected with `console.allow(...)`. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from browser_support import Console
from playwright.sync_api import Browser, Page, sync_playwright
from pymongo import AsyncMongoClient
from stack_support import Stack

from batch_api.adapters.keys import ApiKeyStore

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 860}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API runs its own event loop, which must not outlive the
    # module while other (async) test modules use pytest-asyncio's loop.
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make install` installs Debian's chromium when run as root "
            "(or run `apt-get install -y chromium`)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def page(browser: Browser, stack: Stack, console: Console) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, base_url=stack.url)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    opened = context.new_page()
    opened.on("console", console.on_message)
    opened.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    try:
        yield opened
    finally:
        context.close()
    unexpected = console.unexpected()
    assert not unexpected, f"console errors: {unexpected}"


@pytest.fixture(scope="module")
def viewer_key(stack: Stack) -> str:
    """A viewer key of the stack's tenant, registered the way the API stores keys."""
    key = f"bya_viewer_{uuid.uuid4().hex}"

    async def register() -> None:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.mongodb_url)
        try:
            await ApiKeyStore(client[stack.database]).ensure(
                key, tenant="default", user="vera", role="viewer", name="browser test viewer"
            )
        finally:
            await client.close()

    # Playwright's sync API keeps an event loop running in this thread: register from another.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, register()).result()
    return key
