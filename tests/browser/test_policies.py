"""Scheduling policies on the dashboard: a batch waiting for another shows "waiting for" with
a link to it, a batch whose deadline is threatened shows "at risk", on the overview and on
the detail page, and both follow the batches live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser_support import (
    act_on,
    create_batch,
    mark_document,
    screenshots,
    sign_in,
    wait_status,
)
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def test_waiting_and_at_risk_badges(page: Page, stack: Stack) -> None:
    upstream = create_batch(
        stack,
        name="nightly export",
        job_type="demo.sleep",
        items=[{"seconds": 1.0}] * 30,
        config={"max_concurrent_jobs": 1},
    )
    downstream = create_batch(
        stack,
        name="load into warehouse",
        job_type="demo.sleep",
        items=[{"seconds": 0.1}] * 5,
        config={"depends_on": {"batches": [upstream["id"]], "on": "completed"}},
    )
    deadline = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    hurried = create_batch(
        stack,
        name="invoices due at noon",
        job_type="demo.sleep",
        items=[{"seconds": 0.5}] * 40,
        config={"max_concurrent_jobs": 1, "deadline": deadline, "on_deadline_missed": "continue"},
    )
    sign_in(page, stack.admin_key)
    waiting = page.locator(f"#batch-{downstream['id']} .badge.waiting")
    expect(waiting).to_have_text(f"waiting for {upstream['id']}", timeout=20_000)
    expect(waiting.get_by_role("link", name=upstream["id"])).to_have_attribute(
        "href", f"/batches/{upstream['id']}"
    )
    expect(page.locator(f"#batch-{downstream['id']} .badge").first).to_have_text("queued")
    expect(page.locator(f"#batch-{hurried['id']} .badge.risk")).to_have_text(
        "at risk", timeout=20_000
    )
    expect(page.locator(f"#batch-{upstream['id']} .badge.policy")).to_have_count(0)
    screenshots(page, "policies-overview")

    page.goto(f"/batches/{downstream['id']}")
    mark_document(page)
    expect(page.locator("#b-status .badge.waiting")).to_contain_text(upstream["id"])
    screenshots(page, "policies-detail-waiting")
    # Cancelling the upstream batch cancels this one (it needed it completed): the page
    # follows without a reload, and the badge goes.
    act_on(stack, upstream["id"], "cancel")
    expect(page.locator("#b-status .badge").first).to_have_text("cancelled", timeout=20_000)
    expect(page.locator("#b-status .badge.waiting")).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text(f"dependency {upstream['id']} ended")

    page.goto(f"/batches/{hurried['id']}")
    expect(page.locator("#b-status .badge.risk")).to_have_text("at risk")
    expect(page.locator("#f-deadline")).to_have_class("bad")
    screenshots(page, "policies-detail-at-risk")
    wait_status(stack, downstream["id"], "cancelled")
    httpx.post(
        f"{stack.url}/v1/batches/{hurried['id']}/actions/cancel", headers=stack.headers, timeout=30
    )
