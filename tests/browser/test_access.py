"""Signing in, what a viewer is offered, keyboard use, and a page that does not exist."""

from __future__ import annotations

import re

import httpx
import pytest
from browser_support import Console, create_batch, screenshots, sign_in, wait_status
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def test_a_wrong_key_is_refused_next_to_the_field(page: Page, console: Console) -> None:
    page.goto("/")
    page.wait_for_url("**/signin?next=%2F")
    console.allow(r"status of 401")
    page.get_by_label("API key").fill("bya_not_a_key")
    page.get_by_label("API key").press("Enter")
    expect(page.locator("#err-key")).to_have_text("This key is unknown or revoked.")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    screenshots(page, "signin-refused")


def test_a_viewer_is_not_offered_what_it_may_not_do(
    page: Page, stack: Stack, viewer_key: str
) -> None:
    batch = create_batch(stack, name="seen by a viewer", job_type="demo.sleep", items=[{}] * 3)
    wait_status(stack, batch["id"], "completed")
    sign_in(page, viewer_key)
    expect(page.locator("#who")).to_contain_text("viewer")
    expect(page.get_by_role("link", name="New batch")).to_have_count(0)

    page.goto(f"/batches/{batch['id']}")
    expect(page.get_by_role("heading", name="seen by a viewer")).to_be_visible()
    for name in ("Pause", "Resume", "Cancel", "Retry failed", "Roll back…", "Duplicate"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Report")).to_be_visible()
    screenshots(page, "detail-viewer")

    page.goto("/history")
    expect(page.locator(f"#row-{batch['id']}")).to_be_visible()
    expect(page.get_by_role("checkbox")).to_have_count(0)
    expect(page.get_by_role("button", name="Archive")).to_have_count(0)


def test_the_wizard_works_from_the_keyboard(page: Page, stack: Stack) -> None:
    sign_in(page, stack.admin_key)
    page.goto("/new")
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("keyboard batch")
    page.keyboard.press("Enter")  # Enter moves to the next step
    expect(page.get_by_label("Job type")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the select's first job type
    expect(page.get_by_label("Job type")).not_to_have_value("")
    page.get_by_role("tab", name="Fill in a form").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Paste JSON lines")).to_be_focused()
    expect(page.get_by_role("tab", name="Paste JSON lines")).to_have_attribute(
        "aria-selected", "true"
    )
    page.keyboard.press("Tab")
    expect(page.get_by_label("One JSON object per line")).to_be_focused()
    page.keyboard.type("{}")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Add lines"
    expect(page.locator("#item-count")).to_have_text("1 item")
    page.get_by_role("button", name="Next").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Max attempts per job")).to_be_focused()
    page.keyboard.press("Enter")  # Enter in a field submits the step
    expect(page.get_by_role("button", name="Start now")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/batches/b_[0-9a-z]+$"))
    expect(page.get_by_role("heading", name="keyboard batch")).to_be_visible()


def test_a_page_that_does_not_exist_says_so_in_the_dashboard(
    page: Page, stack: Stack, console: Console
) -> None:
    sign_in(page, stack.admin_key)
    console.allow(r"status of 404")
    for path in ("/batches/b_0123/jobs/b_0123.4", "/batches/not-an-id", "/histroy"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 404
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        expect(page.locator("main code")).to_have_text(path)
        expect(page.locator("#who")).to_contain_text("admin")  # still signed in, with the nav
    page.get_by_role("main").get_by_role("link", name="Overview").click()
    page.wait_for_url(f"{stack.url}/")
    # a program asking the same gets the API's problem, not a page
    answer = httpx.get(f"{stack.url}/histroy")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
