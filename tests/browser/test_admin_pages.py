"""The admin pages: API keys (create with a rate limit, the secret shown once and usable,
revoke) and the audit log (filtered by resource, with links); a viewer gets neither."""

from __future__ import annotations

import re

import httpx
import pytest
from browser_support import create_batch, import_templates, screenshots, sign_in
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def test_create_a_rate_limited_key_use_it_and_revoke_it(
    page: Page, stack: Stack, unique: str
) -> None:
    name = f"importer {unique[:8]}"
    sign_in(page, stack.admin_key)
    page.get_by_role("link", name="Keys", exact=True).click()
    expect(page.locator("#k-rows")).to_have_attribute("aria-busy", "false")
    form = page.get_by_role("form", name="New key")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Role").select_option("operator")
    form.get_by_label("Requests per second").fill("2")
    form.get_by_label("Burst").fill("3")
    form.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("The new API key")
    expect(page.get_by_role("heading", name=f"Copy the new key for {name} now")).to_be_visible()
    key = secret.input_value()
    assert key.startswith("bya_")
    screenshots(page, "keys-created")
    row = page.locator("#k-rows tr", has_text=name)
    expect(row).to_contain_text("2/s, burst 3")
    expect(row).to_contain_text("active")

    # The shown key works, with its own limit: a burst of 3, then 429.
    headers = {"Authorization": f"Bearer {key}"}
    codes = [
        httpx.get(f"{stack.url}/v1/batches?limit=1", headers=headers, timeout=30).status_code
        for _ in range(6)
    ]
    assert codes[:3] == [200, 200, 200], codes
    assert 429 in codes[3:], codes
    page.get_by_role("button", name="Done").click()
    expect(secret).to_be_hidden()
    assert page.locator("#secret-value").input_value() == ""  # gone from the page

    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog", name="Revoke key?").get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
    response = httpx.get(f"{stack.url}/v1/batches?limit=1", headers=headers, timeout=30)
    assert response.status_code == 401


def test_the_audit_log_lists_and_filters_changes(page: Page, stack: Stack) -> None:
    batch = create_batch(stack, name="audited", job_type="demo.sleep", items=[{}])
    # A change of this batch (creation has no id in its path, so no resource).
    response = httpx.patch(
        f"{stack.url}/v1/batches/{batch['id']}",
        json={"description": "looked at"},
        headers=stack.headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    sign_in(page, stack.admin_key)
    page.get_by_role("link", name="Audit", exact=True).click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.get_by_label("Resource id").fill(batch["id"])
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#a-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("PATCH")
    expect(rows.first).to_contain_text("200 ok")
    screenshots(page, "audit")
    rows.first.get_by_role("link", name=batch["id"]).click()
    expect(page.get_by_role("heading", name="audited")).to_be_visible()
    # a library template's change links to the library, not to the batch templates
    [template_id] = import_templates(stack, [{"name": "audited", "body": "Hi"}])
    changed = httpx.patch(
        f"{stack.url}/v1/library/templates/{template_id}",
        json={"body": "Hello"},
        headers=stack.headers,
        timeout=30,
    )
    assert changed.status_code == 200, changed.text
    page.goto("/audit")
    page.get_by_label("Resource id").fill(template_id)
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=template_id).click()
    page.wait_for_url(re.compile(r"/library$"))


def test_a_viewer_gets_no_admin_pages(page: Page, stack: Stack, viewer_key: str) -> None:
    sign_in(page, viewer_key)
    expect(page.get_by_role("link", name="Keys", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Audit", exact=True)).to_have_count(0)
    page.goto("/keys")
    expect(page.get_by_text("Only admins manage keys.")).to_be_visible()
    expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    page.goto("/audit")
    expect(page.get_by_text("Only admins read the audit log.")).to_be_visible()
    page.goto("/templates")
    expect(page.get_by_role("button", name="New template")).to_have_count(0)
    page.goto("/schedules")
    expect(page.get_by_role("button", name="New schedule")).to_have_count(0)
