"""The template library page: the templates of a category with their status after a
consolidation (a merged one names the template it went into), a document written outside
the API flagged with what it lacks, the status filter, and the way on to a consolidation."""

from __future__ import annotations

import re

import pytest
from browser_support import (
    Console,
    broken_template,
    consolidate,
    hold_first_read,
    import_templates,
    screenshots,
    sign_in,
    wait_status,
)
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def test_the_library_shows_statuses_and_flags_a_broken_template(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    category = f"lib{unique}"
    body = "Thanks for your order {{id}}."
    ids = import_templates(
        stack,
        [
            {"name": f"thanks {unique}", "category": category, "body": body},
            {"name": f"thanks copy {unique}", "category": category, "body": body.upper()},
            {"name": f"sorry {unique}", "category": category, "body": "Sorry for the wait."},
        ],
    )
    wait_status(stack, consolidate(stack, ids)["batch_id"], "completed")
    with broken_template(stack, category=category, name=f"legacy {unique}") as broken:
        _look_at_the_library(page, stack, console, category, ids, broken)


def _look_at_the_library(
    page: Page, stack: Stack, console: Console, category: str, ids: list[str], broken: str
) -> None:
    sign_in(page, stack.admin_key)
    page.goto("/")
    page.get_by_role("link", name="Library").click()
    page.get_by_label("Category").fill(category)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#l-rows tr")
    expect(rows).to_have_count(4)
    merged = rows.filter(has_text="merged")
    expect(merged).to_have_count(1)
    expect(merged).to_contain_text(re.compile(r"into t_"))
    expect(page.locator(f"#template-{broken}")).to_contain_text("Not a whole template: no body")
    screenshots(page, "library")

    page.get_by_label("Status").select_option("merged")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("id") in {f"template-{i}" for i in ids[:2]}

    page.get_by_role("link", name="Consolidate…").click()
    page.wait_for_url(re.compile(r"/new\?job_type=templates.consolidate"))
    page.get_by_label("Name").fill("from the library page")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("Job type")).to_have_value("templates.consolidate")
    expect(page.locator("#consolidation")).to_be_visible()
    assert console.unexpected() == []


def test_the_library_reads_a_long_category_a_page_at_a_time(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    category = f"many{unique}"
    import_templates(
        stack,
        [{"name": f"n{i:03}", "category": category, "body": f"text {i}"} for i in range(101)]
        # and others, among which the whole library's first page (by random ids) falls
        + [{"name": f"o{i:03}", "category": f"few{unique}", "body": "x"} for i in range(50)],
    )
    sign_in(page, stack.admin_key)
    # the page's first read (no filter), answered late
    held = hold_first_read(page, "**/v1/library/templates?*", unless="category=")
    page.goto("/library")
    page.get_by_label("Category").fill(category)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#l-rows tr")
    expect(rows).to_have_count(100)
    assert len(held) == 1
    held[0].continue_()  # its answer (the whole library's first page) comes after the filter's
    page.wait_for_timeout(500)
    expect(rows.filter(has_not_text=category)).to_have_count(0)
    more = page.get_by_role("button", name="Load more")
    more.click()
    expect(rows).to_have_count(101)
    expect(more).to_be_hidden()
    # a new filter starts from the first page again
    page.get_by_label("Search").fill("n100")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#l-empty")).to_be_hidden()
    assert console.unexpected() == []
