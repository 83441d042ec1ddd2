"""History's bulk actions with the result for each batch, the analytics panel of a batch,
and the stats strip of the overview."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from browser_support import (
    create_batch,
    get_batch,
    hold_first_read,
    screenshots,
    sign_in,
    wait_status,
)
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def test_bulk_archive_and_delete_from_history_show_each_batch_result(
    page: Page, stack: Stack, unique: str
) -> None:
    tag = f"bulk-{unique[:8]}"
    done = [
        create_batch(stack, name=f"{tag} done {i}", job_type="demo.sleep", items=[{}], tags=[tag])
        for i in range(2)
    ]
    busy = create_batch(
        stack, name=f"{tag} busy", job_type="demo.sleep", items=[{"seconds": 30}], tags=[tag]
    )
    for batch in done:
        wait_status(stack, batch["id"], "completed")
    wait_status(stack, busy["id"], "running")
    sign_in(page, stack.admin_key)
    page.goto(f"/history?q={tag}")
    expect(page.locator("#rows tr")).to_have_count(3)
    page.get_by_label("Select all batches on this page").check()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.get_by_role("button", name="Archive").click()
    results = page.get_by_role("region", name="archive: results")
    expect(results.locator("#br-summary")).to_have_text("2 of 3 accepted, 1 refused.")
    refused = results.locator("tr[data-ok=false]")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text(f"{tag} busy")
    expect(refused).to_contain_text("running")
    screenshots(page, "history-bulk-results")
    assert get_batch(stack, done[0]["id"])["status"] == "archived"
    assert get_batch(stack, busy["id"])["status"] == "running"

    # Cancel the busy one through the same toolbar (asks first), then delete all three.
    page.locator(f"#row-{busy['id']}").get_by_role("checkbox").check()
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Cancel").click()
    results = page.get_by_role("region", name="cancel: results")
    expect(results.locator("#br-summary")).to_have_text("1 of 1 accepted.")
    wait_status(stack, busy["id"], "cancelled")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f"#row-{busy['id']}")).to_contain_text("cancelled")
    page.get_by_label("Select all batches on this page").check()
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Delete").click()
    results = page.get_by_role("region", name="delete: results")
    expect(results.locator("#br-summary")).to_have_text("3 of 3 accepted.")
    expect(page.locator("#rows tr")).to_have_count(0)


def test_the_analytics_panel_and_the_overview_stats(page: Page, stack: Stack) -> None:
    items = [{"seconds": 0.05 * (i % 5)} for i in range(30)]
    items += [{"fail_with": "permanent", "fail_first_attempts": 5}] * 3
    items += [{"fail_first_attempts": 1}]  # retried once, then completed
    batch = create_batch(
        stack,
        name="analysed",
        job_type="demo.sleep",
        items=items,
        config={"max_concurrent_jobs": 4, "retry": {"max_attempts": 2, "backoff_initial_s": 0.1}},
    )
    wait_status(stack, batch["id"], "completed_with_errors")
    sign_in(page, stack.admin_key)
    expect(page.locator("#st-batches")).not_to_have_text("–")
    expect(page.locator("#st-completed")).not_to_have_text("–")
    page.goto(f"/batches/{batch['id']}")
    panel = page.get_by_role("region", name="Analytics")
    expect(panel.locator("#a-durations")).to_contain_text("p95")
    expect(panel.locator("#a-durations div", has_text="Jobs timed")).to_contain_text("34")
    expect(panel.locator(".retries")).to_have_text("35 attempts · 1 job retried · 1 extra attempt")
    errors = panel.get_by_role("table", name="Failed attempts by error class")
    expect(errors).to_contain_text("DemoFailure")
    expect(errors.locator("tbody tr")).to_have_count(1)
    # 3 permanent failures and a retryable one: the worst of them
    expect(errors.locator("tbody tr .sev-high")).to_have_text("high")
    # the failed jobs' rows say how bad their failure was
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#jobs tr .sev-high")).to_have_count(3)
    chart = panel.get_by_role("img", name="Throughput over time")
    expect(chart).to_be_visible()
    assert chart.locator("rect.bar-ok").count() >= 1
    assert chart.locator("rect.bar-bad").count() >= 1
    screenshots(page, "detail-analytics")


def test_history_filters_by_tag_owner_and_creation_day(
    page: Page, stack: Stack, unique: str
) -> None:
    name = f"filters-{unique[:8]}"
    nightly = create_batch(stack, name=f"{name} a", job_type="demo.sleep", items=[{}], tags=[name])
    other = create_batch(stack, name=f"{name} b", job_type="demo.sleep", items=[{}], tags=["x"])
    sign_in(page, stack.admin_key)
    page.goto(f"/history?q={name}")
    expect(page.locator("#rows tr")).to_have_count(2)

    page.get_by_label("Tag").fill(name)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#rows tr")).to_have_count(1)
    expect(page.locator(f"#row-{nightly['id']}")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"tag={name}"))
    page.reload()  # the filter is in the address: a reload or a shared link keeps it
    expect(page.get_by_label("Tag")).to_have_value(name)
    expect(page.locator("#rows tr")).to_have_count(1)

    page.get_by_label("Tag").fill("")
    page.get_by_label("Owner").fill("someone-else")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#empty")).to_be_visible()
    page.get_by_label("Owner").fill("admin")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#rows tr")).to_have_count(2)

    # created before today: neither; before tomorrow: both
    today = date.today()
    page.get_by_label("Created before").fill(today.isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#empty")).to_be_visible()
    page.get_by_label("Created before").fill((today + timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f"#row-{other['id']}")).to_be_visible()
    expect(page.locator("#rows tr")).to_have_count(2)
    screenshots(page, "history-filters")


def test_history_keeps_the_filter_when_the_first_read_answers_late(
    page: Page, stack: Stack, unique: str
) -> None:
    name = f"late-{unique[:8]}"
    wanted = create_batch(stack, name=f"{name} wanted", job_type="demo.sleep", items=[{}])
    newest = create_batch(stack, name=f"other-{unique[:8]}", job_type="demo.sleep", items=[{}])
    sign_in(page, stack.admin_key)
    # the page's first read (no filter: the newest batches), answered late
    held = hold_first_read(page, "**/v1/batches?*", unless="q=")
    page.goto("/history")
    page.get_by_label("Name contains").fill(name)
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(1)
    assert len(held) == 1
    held[0].continue_()  # its answer, with the newest batch in it, comes after the filter's
    page.wait_for_timeout(500)
    expect(rows).to_have_count(1)
    expect(page.locator(f"#row-{wanted['id']}")).to_be_visible()
    expect(page.locator(f"#row-{newest['id']}")).to_have_count(0)
    expect(page.get_by_role("button", name="Next")).to_be_disabled()


def test_history_pauses_and_resumes_several_batches(page: Page, stack: Stack, unique: str) -> None:
    name = f"pause-{unique[:8]}"
    busy = [
        create_batch(stack, name=f"{name} {i}", job_type="demo.sleep", items=[{"seconds": 30}] * 3)
        for i in range(2)
    ]
    for batch in busy:
        wait_status(stack, batch["id"], "running")
    sign_in(page, stack.admin_key)
    page.goto(f"/history?q={name}")
    expect(page.locator("#rows tr")).to_have_count(2)
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()
    page.get_by_label("Select all batches on this page").check()
    page.get_by_role("button", name="Pause").click()
    results = page.get_by_role("region", name="pause: results")
    expect(results.locator("#br-summary")).to_have_text("2 of 2 accepted.")
    for batch in busy:
        wait_status(stack, batch["id"], "paused")

    page.reload()
    expect(page.locator("#rows tr").filter(has_text="paused")).to_have_count(2)
    page.get_by_label("Select all batches on this page").check()
    expect(page.get_by_role("button", name="Pause")).to_be_disabled()
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("region", name="resume: results").locator("#br-summary")).to_have_text(
        "2 of 2 accepted."
    )
    for batch in busy:
        wait_status(stack, batch["id"], "running", "queued")
    page.get_by_label("Select all batches on this page").check()
    page.get_by_role("button", name="Cancel", exact=True).click()  # done with them
    page.get_by_role("dialog", name="Are you sure?").get_by_role("button", name="Cancel").click()
    for batch in busy:
        wait_status(stack, batch["id"], "cancelled")
