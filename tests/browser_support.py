"""What the browser tests do again and again: sign in, call the API directly for setup,
wait for a batch state, and save screenshots at a laptop and a phone width."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import ConsoleMessage, Page, Route, expect
from pymongo import MongoClient
from stack_support import Stack

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}


def sign_in(page: Page, key: str) -> None:
    page.goto("/signin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def screenshots(page: Page, name: str) -> None:
    """Full-page screenshots of the current page at both widths, then back to the desktop."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
        # nothing wider than the screen: a phone would have to scroll the whole page sideways
        # (a wide table scrolls inside its own frame instead)
        overflow = page.evaluate("document.documentElement.scrollWidth") - width
        assert overflow <= 0, f"{name}: the page is {overflow}px wider than a {label} screen"
    width, height = WIDTHS["desktop"]
    page.set_viewport_size({"width": width, "height": height})


def clipped_screenshot(page: Page, name: str, height: int = 540) -> Path:
    """The top of the page at the desktop width (the README's picture is one of these)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": height})
    return path


def create_batch(stack: Stack, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{stack.url}/v1/batches", json=body, headers=stack.headers, timeout=30)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def act_on(stack: Stack, batch_id: str, action: str) -> None:
    """Asks for a batch action through the API (not the page), as another client would."""
    response = httpx.post(
        f"{stack.url}/v1/batches/{batch_id}/actions/{action}", headers=stack.headers, timeout=30
    )
    assert response.status_code == 202, response.text


def hold_first_read(page: Page, url: str, unless: str) -> list[Route]:
    """Holds back the first request to `url` (a glob) whose address lacks `unless`: a page's
    first, unfiltered read, to answer after the filter a test applies (`held[0].continue_()`).
    Every other request goes through."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        if unless in route.request.url or held:
            route.continue_()
        else:
            held.append(route)

    page.route(url, hold)
    return held


def import_templates(stack: Stack, templates: list[dict[str, Any]]) -> list[str]:
    """Ids of library templates imported for a test."""
    response = httpx.post(
        f"{stack.url}/v1/library/templates/import",
        json={"templates": templates},
        headers=stack.headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    ids: list[str] = response.json()["ids"]
    return ids


@contextmanager
def broken_template(stack: Stack, **fields: Any) -> Iterator[str]:
    """The id of a library document the API did not write (a bulk load): `fields` and no
    more, in the stack's default tenant; removed on leaving, since other tests plan over the
    whole library and must not meet it."""
    doc = {"_id": f"t_broken{uuid.uuid4().hex[:12]}", "tenant": "default", **fields}
    with MongoClient(stack.mongodb_url) as client:
        templates = client[stack.database]["library_templates"]
        templates.insert_one(doc)
        try:
            yield doc["_id"]
        finally:
            templates.delete_one({"_id": doc["_id"]})


def consolidate(stack: Stack, template_ids: list[str], **extra: Any) -> dict[str, Any]:
    """Starts a consolidation of these templates; its answer (`batch_id`, `plan`)."""
    response = httpx.post(
        f"{stack.url}/v1/library/consolidations",
        json={"template_ids": template_ids, **extra},
        headers=stack.headers,
        timeout=30,
    )
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


def get_batch(stack: Stack, batch_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/v1/batches/{batch_id}", headers=stack.headers, timeout=30)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def wait_status(stack: Stack, batch_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch = get_batch(stack, batch_id)
        if batch["status"] in statuses:
            return batch
        assert time.monotonic() < deadline, f"{batch_id} stayed {batch['status']}, not {statuses}"
        time.sleep(0.3)


def wait_for(page: Page, done: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Lets the page run until `done()` holds; fails saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        page.wait_for_timeout(100)


def mark_document(page: Page) -> None:
    """Marks the loaded document; `assert_not_reloaded` fails if a navigation replaced it."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


@dataclass
class Console:
    """Console errors and uncaught exceptions of one page, with the ones a test expects."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]
