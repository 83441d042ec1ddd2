"""Live updates without reloading: the overview follows running batches, and pause/resume on
the detail page take effect and show."""

from __future__ import annotations

import asyncio
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from browser_support import (
    act_on,
    assert_not_reloaded,
    clipped_screenshot,
    consolidate,
    create_batch,
    get_batch,
    import_templates,
    mark_document,
    screenshots,
    sign_in,
    wait_for,
    wait_status,
)
from library_data import wide_library
from playwright.sync_api import Page, Route, expect
from stack_support import Stack
from tenancy import auth, other_tenant_admin

pytestmark = pytest.mark.browser


def test_overview_follows_batches_live(page: Page, stack: Stack) -> None:
    sign_in(page, stack.admin_key)
    # The cards read "–" until the first listing arrived (slower with many batches).
    expect(page.locator("#c-completed")).not_to_have_text("–")
    # "N+" once more of today's batches exist than the overview reads
    completed_before = int(page.locator("#c-completed").inner_text().rstrip("+") or 0)
    mark_document(page)
    slow = create_batch(
        stack,
        name="nightly template sync",
        job_type="demo.sleep",
        priority="high",
        items=[{"seconds": 0.25}] * 40,
        config={"max_concurrent_jobs": 2},
    )
    flaky = create_batch(
        stack,
        name="import with some bad rows",
        job_type="demo.sleep",
        items=[{"seconds": 0.2}] * 30 + [{"fail_with": "permanent", "fail_first_attempts": 1}] * 3,
        config={"max_concurrent_jobs": 1},
    )
    card = page.locator(f"#batch-{slow['id']}")
    expect(card).to_be_visible()
    expect(card.locator(".badge")).to_have_text("running", timeout=20_000)
    expect(page.locator(f"#batch-{flaky['id']}")).to_be_visible()
    # The percentage moves while the page stays the same document.
    first = float(card.locator(".pct").inner_text().rstrip("%"))
    expect(card.locator(".pct")).not_to_have_text(f"{first:.1f}%", timeout=10_000)
    expect(page.locator("#c-rate")).not_to_have_text("0")
    screenshots(page, "overview-live")
    clipped_screenshot(page, "overview-readme")

    wait_status(stack, slow["id"], "completed", timeout=60)
    expect(page.locator(f"#active #batch-{slow['id']}")).to_have_count(0, timeout=15_000)
    expect(page.locator(f"#recent #batch-{slow['id']}")).to_contain_text("completed")
    expect(page.locator("#c-completed")).not_to_have_text(str(completed_before))
    assert_not_reloaded(page)


def slow_batch(stack: Stack, name: str) -> dict[str, Any]:
    """Thirty jobs of 0.3 s, one at a time: running for about nine seconds."""
    return create_batch(
        stack,
        name=name,
        job_type="demo.sleep",
        items=[{"seconds": 0.3}] * 30,
        config={"max_concurrent_jobs": 1},
    )


def test_an_open_batch_older_than_the_newest_200_still_shows_on_the_overview(
    page: Page, stack: Stack
) -> None:
    """The overview reads the newest 200 batches: a tenant that made more since a batch was
    opened still sees it among the active ones, and today's counts say they are partial."""
    # Playwright's sync API keeps an event loop running in this thread: register from another.
    with ThreadPoolExecutor(1) as pool:
        key = pool.submit(asyncio.run, other_tenant_admin(stack)).result()
    with httpx.Client(base_url=stack.url, headers=auth(key), timeout=30) as api:
        made = api.post(
            "/v1/batches",
            json={
                "name": "quarterly archive (draft)",
                "job_type": "demo.sleep",
                "draft": True,
                "items": [{"seconds": 0}] * 3,
            },
        )
        assert made.status_code == 201, made.text
        old = made.json()
        for k in range(201):
            quick = api.post(
                "/v1/batches",
                json={"name": f"ping {k}", "job_type": "demo.sleep", "items": [{"seconds": 0}]},
            )
            assert quick.status_code == 201, quick.text
    sign_in(page, key)
    card = page.locator(f"#active #batch-{old['id']}")
    expect(card).to_be_visible(timeout=15_000)
    expect(card.locator(".badge")).to_have_text("draft")
    expect(page.locator("#c-completed")).to_have_text(re.compile(r"^[0-9,]+\+$"))
    expect(page.locator("#c-completed")).to_have_attribute("title", re.compile("newest 200"))
    expect(page.locator("#c-queued")).not_to_have_text("0")


def test_more_open_batches_than_the_overview_reads_are_counted_as_at_least(
    page: Page, stack: Stack
) -> None:
    with ThreadPoolExecutor(1) as pool:
        key = pool.submit(asyncio.run, other_tenant_admin(stack)).result()
    with httpx.Client(base_url=stack.url, headers=auth(key), timeout=30) as api:
        for k in range(201):
            draft = api.post(
                "/v1/batches",
                json={
                    "name": f"draft {k}",
                    "job_type": "demo.sleep",
                    "draft": True,
                    "items": [{"seconds": 0}],
                },
            )
            assert draft.status_code == 201, draft.text
    sign_in(page, key)
    expect(page.locator("#c-queued")).to_have_text("200+")
    expect(page.locator("#c-active")).to_have_text("0+")


def test_pause_and_resume_from_the_detail_page(page: Page, stack: Stack) -> None:
    batch = slow_batch(stack, "pausable")
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch['id']}")
    mark_document(page)
    expect(page.locator("#b-status")).to_have_text("running", timeout=20_000)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#b-status")).to_have_text("paused", timeout=15_000)
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    paused = wait_status(stack, batch["id"], "paused")
    time.sleep(2)  # nothing is dispatched while paused: at most the job in flight finishes
    still = get_batch(stack, batch["id"])
    assert still["status"] == "paused"
    assert still["progress"]["completed"] <= paused["progress"]["completed"] + 1
    assert still["progress"]["completed"] < 30
    expect(page.locator("#timeline")).to_contain_text("paused")
    screenshots(page, "detail-paused")

    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#b-status")).to_have_text("running", timeout=15_000)
    expect(page.locator("#f-done")).to_have_text("100.0%", timeout=60_000)
    expect(page.locator("#b-status")).to_have_text("completed", timeout=15_000)
    # the pause is not in its rate: the page says how long it ran beside how long it took
    done = get_batch(stack, batch["id"])["progress"]
    assert done["elapsed_s"] - done["active_s"] >= 1  # from when its running job ended
    expect(page.locator("#f-active")).to_be_visible()
    expect(page.locator("#f-avgjob")).to_have_text(re.compile(r"^[34]\d\d ms$"))  # 0.3 s jobs
    expect(page.locator("#f-elapsed")).not_to_have_text(page.locator("#f-active").inner_text())
    assert_not_reloaded(page)


def test_a_read_older_than_the_stream_does_not_take_back_its_status(
    page: Page, stack: Stack
) -> None:
    """The live feed sees a snapshot before the reporter has projected it, so a read of the
    batch made right after the stream showed "paused" can still say "running" (CI saw the page
    stuck at "running" after a pause). Here every read of the batch answers one seq behind the
    view, as such a read would: the page keeps what the stream showed."""
    batch = slow_batch(stack, "paused before the page opened")
    wait_status(stack, batch["id"], "running")
    act_on(stack, batch["id"], "pause")
    paused = wait_status(stack, batch["id"], "paused")
    assert paused["seq"] > 0
    stale_reads = []

    def stale(route: Route) -> None:
        body = route.fetch().json()
        body.update(status="running", seq=body["seq"] - 1)
        stale_reads.append(body["seq"])
        route.fulfill(json=body)

    sign_in(page, stack.admin_key)
    page.route(f"**/v1/batches/{batch['id']}", stale)
    page.goto(f"/batches/{batch['id']}")
    # The first read shows "running"; the stream then opens with the view ("paused"); the
    # read the page makes once the stream is live is the stale one it must not believe.
    expect(page.locator("#b-status")).to_have_text("paused", timeout=15_000)
    expect(page.locator("#live")).to_have_text("live")
    wait_for(page, lambda: len(stale_reads) >= 2, "the page did not read the batch again")
    page.wait_for_timeout(500)
    expect(page.locator("#b-status")).to_have_text("paused")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()


def test_the_overview_keeps_a_streamed_status_that_a_listing_is_behind(
    page: Page, stack: Stack
) -> None:
    """As above, on the overview: its listing is read again whenever a batch it does not show
    yet appears, and every listing here answers one seq behind for the watched batch."""
    batch = slow_batch(stack, "paused while watched")
    stale_reads = []

    def stale(route: Route) -> None:
        body = route.fetch().json()
        for item in body["items"]:
            if item["id"] == batch["id"]:
                item.update(status="running", seq=item["seq"] - 1)
                stale_reads.append(item["seq"])
        route.fulfill(json=body)

    page.route(lambda url: "/v1/batches?limit=" in url, stale)
    sign_in(page, stack.admin_key)
    card = page.locator(f"#batch-{batch['id']}")
    expect(card.locator(".badge")).to_have_text("running", timeout=20_000)
    expect(page.locator("#live")).to_have_text("live")
    act_on(stack, batch["id"], "pause")
    expect(card.locator(".badge")).to_have_text("paused", timeout=15_000)
    reads = len(stale_reads)
    create_batch(stack, name="appears later", job_type="demo.sleep", items=[{}])
    wait_for(page, lambda: len(stale_reads) > reads, "the overview did not read its listing again")
    page.wait_for_timeout(500)
    expect(card.locator(".badge")).to_have_text("paused")


def test_a_finished_batch_page_follows_a_retry_asked_for_elsewhere(
    page: Page, stack: Stack
) -> None:
    """A finished batch's stream ends at once; a retry requested from the CLI, another page or
    before the reporter projected it must still show on a page already open."""
    batch = create_batch(
        stack,
        name="retried from elsewhere",
        job_type="demo.sleep",
        items=[{"seconds": 0.05}] * 3 + [{"fail_first_attempts": 1, "fail_with": "permanent"}],
    )
    wait_status(stack, batch["id"], "completed_with_errors")
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch['id']}")
    mark_document(page)
    expect(page.locator("#b-status")).to_have_text("completed with errors")
    expect(page.locator("#live")).to_have_text("finished")
    act_on(stack, batch["id"], "retry")
    expect(page.locator("#b-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator("#f-errors")).to_have_text("0")
    assert_not_reloaded(page)


def test_the_jobs_table_follows_running_jobs_and_keeps_open_details(
    page: Page, stack: Stack
) -> None:
    batch = create_batch(
        stack,
        name="watched jobs",
        job_type="demo.sleep",
        items=[{"seconds": 0.3}] * 20,
        config={"max_concurrent_jobs": 1},
    )
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch['id']}")
    mark_document(page)
    expect(page.locator("#job-0")).to_contain_text("completed", timeout=20_000)
    page.locator("#job-0").get_by_role("button", name="Details").click()
    expect(page.locator("#job-detail-0")).to_contain_text("#1 completed")
    # Later jobs finish and show without a reload; the open detail stays open.
    expect(page.locator("#job-8")).to_contain_text("completed", timeout=30_000)
    expect(page.locator("#job-detail-0")).to_be_visible()
    assert_not_reloaded(page)


def test_a_private_batch_shows_who_sees_it_and_its_webhook_notices(
    page: Page, stack: Stack
) -> None:
    batch = create_batch(
        stack,
        name="private with a hook",
        job_type="demo.sleep",
        items=[{"seconds": 0.01}] * 2,
        visibility="private",
        shared_with=["cy"],
        # a loopback address that is not allow-listed: the notice fails without a call
        config={"notifications": [{"url": "http://127.0.0.2:9/hook"}]},
    )
    wait_status(stack, batch["id"], "completed")
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch['id']}")
    expect(page.locator("#b-meta")).to_contain_text("private, shared with cy")
    hooks = page.locator("#hooks tr")
    expect(hooks).to_have_count(1, timeout=15_000)
    expect(hooks.first).to_contain_text("finished")
    expect(hooks.first).to_contain_text("non-public", timeout=15_000)
    screenshots(page, "detail-webhooks")


def test_the_overview_shows_a_rollback_as_it_goes(page: Page, stack: Stack) -> None:
    """A rolling-back batch's card showed its finished run (100%, every job); it shows how
    far the rollback is, live from the tenant's stream, until the batch is rolled back."""
    ids = import_templates(stack, wide_library(random.Random(41), 3000))
    batch_id = consolidate(stack, ids, templates_per_job=1, max_concurrent_jobs=1000)["batch_id"]
    wait_status(stack, batch_id, "completed", timeout=120)
    sign_in(page, stack.admin_key)
    expect(page.locator("#live")).to_have_text("live")
    mark_document(page)
    act_on(stack, batch_id, "rollback")
    card = page.locator(f"#active #batch-{batch_id}")
    expect(
        card.get_by_role("progressbar", name="template consolidation rollback progress")
    ).to_be_visible(timeout=20_000)
    restored = card.locator("dd").first
    expect(restored).to_contain_text(" / 2,700")
    first = restored.inner_text()
    expect(restored).not_to_have_text(first, timeout=10_000)  # moves on without a reload
    clipped_screenshot(page, "overview-rollback")
    expect(card).to_have_count(0, timeout=60_000)
    expect(page.locator(f"#recent #batch-{batch_id} .badge")).to_have_text("rolled back")
    assert_not_reloaded(page)


def test_a_percent_shown_never_claims_all_or_none_when_it_is_not_so(
    page: Page, stack: Stack
) -> None:
    """9,999 of 10,000 jobs done, or 5 failed in 30,786, is not 100.0%; one in 10,000 done
    is not 0.0% (the dashboard's percents: progress, success rates, the history table)."""
    sign_in(page, stack.admin_key)
    page.goto("/")
    shown = page.evaluate(
        """async () => {
            const { fmtPercent } = await import("/ui/static/js/ui.js");
            return [99.99, 100 * 30781 / 30786, 100, 42.46, 0.01, 0, null].map(fmtPercent);
        }"""
    )
    assert shown == ["99.9%", "99.9%", "100.0%", "42.5%", "0.1%", "0.0%", "–"]
