"""Schedules in the browser: create one (a bad cron is refused next to the field), see its
next runs, switch it off and on, trigger it now and follow its run to the batch it made."""

from __future__ import annotations

import httpx
import pytest
from browser_support import Console, screenshots, sign_in, wait_status
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def make_template(stack: Stack, name: str) -> str:
    body = {
        "name": name,
        "category": "scheduled",
        "spec": {"job_type": "demo.sleep", "items": [{"seconds": 0.05}] * 2},
    }
    response = httpx.post(f"{stack.url}/v1/templates", json=body, headers=stack.headers, timeout=30)
    assert response.status_code == 201, response.text
    template_id: str = response.json()["id"]
    return template_id


def schedule_of(stack: Stack, name: str) -> dict[str, object]:
    response = httpx.get(
        f"{stack.url}/v1/schedules", params={"q": name}, headers=stack.headers, timeout=30
    )
    response.raise_for_status()
    (found,) = response.json()["items"]
    schedule: dict[str, object] = found
    return schedule


def test_create_toggle_trigger_and_follow_a_run(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    console.allow(r"status of 422")
    template = f"nightly {unique[:8]}"
    name = f"sched {unique[:8]}"
    make_template(stack, template)
    sign_in(page, stack.admin_key)
    page.get_by_role("link", name="Schedules").click()
    expect(page.locator("#s-rows")).to_have_attribute("aria-busy", "false")
    page.get_by_role("button", name="New schedule").click()
    dialog = page.get_by_role("dialog", name="New schedule")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Cron").fill("61 3 * * *")
    dialog.get_by_label("Timezone").fill("Europe/Berlin")
    dialog.get_by_label("If the previous run is unfinished").select_option("queue")
    dialog.get_by_label("Runs missed while no scheduler ran").select_option("latest")
    dialog.get_by_label("Make each batch from template").select_option(
        label=f"{template} (scheduled, 2 items)"
    )
    dialog.get_by_role("button", name="Save schedule").click()
    expect(dialog.locator("#sfe-cron")).to_contain_text("not a cron expression")
    expect(dialog.get_by_label("Cron")).to_have_attribute("aria-invalid", "true")
    dialog.get_by_label("Cron").fill("30 3 * * 1-5")
    dialog.get_by_role("button", name="Save schedule").click()
    expect(dialog).to_be_hidden()

    row = page.locator("#s-rows tr", has_text=name)
    expect(row).to_contain_text("30 3 * * 1-5")
    expect(row).to_contain_text("Europe/Berlin")
    # The next run is 03:30 Berlin time on a weekday.
    expect(row.locator(".next-runs time").first).to_contain_text("03:30")
    stored = schedule_of(stack, name)
    assert stored["overlap"] == "queue"
    assert stored["catch_up"] == "latest"
    assert len(stored["next_runs"]) == 5  # type: ignore[arg-type]
    screenshots(page, "schedules")

    switch = row.get_by_role("switch", name=f"{name} enabled")
    switch.uncheck()
    expect(row).to_have_attribute("data-enabled", "false")
    expect(row.locator(".next-runs, td:nth-child(4)")).to_contain_text("disabled")
    assert schedule_of(stack, name)["enabled"] is False
    row.get_by_role("switch", name=f"{name} enabled").check()
    expect(row).to_have_attribute("data-enabled", "true")
    assert schedule_of(stack, name)["enabled"] is True

    row.get_by_role("button", name="Trigger now").click()
    expect(page.locator("#toasts")).to_contain_text(f"{name}: started batch")
    runs = page.get_by_role("region", name=f"Runs of {name}")
    expect(runs.locator("#runs tr")).to_have_count(1)
    expect(runs.locator("#runs tr").first).to_contain_text("manual")
    expect(runs.locator("#runs tr").first).to_contain_text("created")
    expect(row.locator(".last-run")).to_contain_text("created")
    screenshots(page, "schedules-runs")
    runs.get_by_role("link").first.click()
    page.wait_for_url("**/batches/b_*")
    batch = wait_status(stack, page.url.rsplit("/", 1)[1], "completed")
    assert f"schedule:{stored['id']}" in batch["tags"]

    # Edit: a new cron shows at once; then delete it.
    page.goto("/schedules")
    expect(page.locator("#s-rows")).to_have_attribute("aria-busy", "false")
    row = page.locator("#s-rows tr", has_text=name)
    row.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("dialog", name=f"Edit {name}")
    editor.get_by_label("Cron").fill("0 12 * * *")
    editor.get_by_role("button", name="Save schedule").click()
    expect(row).to_contain_text("0 12 * * *")
    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Delete schedule?").get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)


def test_a_consolidation_schedule_is_edited_on_the_page(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    name = f"tidy {unique[:8]}"
    body = {
        "name": name,
        "cron": "0 4 * * 0",
        "consolidation": {"filter": {"category": f"c{unique[:8]}"}, "templates_per_job": 20},
    }
    made = httpx.post(f"{stack.url}/v1/schedules", json=body, headers=stack.headers, timeout=30)
    assert made.status_code == 201, made.text
    sign_in(page, stack.admin_key)
    page.goto("/schedules")
    row = page.locator("#s-rows tr", has_text=name)
    row.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("dialog", name=f"Edit {name}")
    # its runs plan their own templates: no template, no items, but how it consolidates
    expect(editor.get_by_label("Make each batch from template")).to_be_hidden()
    expect(editor.get_by_label("Items")).to_be_hidden()
    expect(editor.locator("#sf-c-scope")).to_have_text(
        f"Consolidates (merge) the templates in c{unique[:8]}, planned afresh at each run."
    )
    expect(editor.get_by_label("Operation")).to_have_value("merge")
    editor.get_by_label("Operation").select_option("archive")
    editor.get_by_label("When two templates clash").select_option("interactive")
    editor.get_by_label("Backups").select_option("manual")
    screenshots(page, "schedules-edit-consolidation")
    editor.get_by_role("button", name="Save schedule").click()
    expect(editor).to_be_hidden()
    expect(row).to_contain_text("Consolidates (archive)")
    stored = schedule_of(stack, name)["consolidation"]
    assert isinstance(stored, dict)
    assert (
        stored["operation"],
        stored["conflict_resolution"],
        stored["backup_strategy"],
    ) == ("archive", "interactive", "manual")
    # the rest of it stays as it was made
    assert (stored["filter"]["category"], stored["templates_per_job"]) == (f"c{unique[:8]}", 20)
    assert console.unexpected() == []
