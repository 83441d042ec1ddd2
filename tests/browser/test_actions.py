"""Acting on finished batches: retry failed jobs from the history page, inspect a failed job,
roll back from the detail page with the dry-run plan and its check shown first (refused when
a template was edited after the batch, then forced); no rollback is offered for a job type that keeps
no backups."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from browser_support import (
    consolidate,
    create_batch,
    get_batch,
    import_templates,
    screenshots,
    sign_in,
    wait_status,
)
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser

# Fails its first attempt with a permanent error (not retried automatically), then succeeds.
FAILS_ONCE = {"fail_with": "permanent", "fail_first_attempts": 1}


def test_retry_failed_jobs_from_history(page: Page, stack: Stack) -> None:
    batch = create_batch(
        stack,
        name="retry me",
        job_type="demo.sleep",
        items=[{"seconds": 0.05}] * 6 + [FAILS_ONCE] * 2,
        config={"max_concurrent_jobs": 4},
    )
    done = wait_status(stack, batch["id"], "completed_with_errors")
    assert done["progress"]["failed"] == 2
    sign_in(page, stack.admin_key)
    page.goto("/history")
    row = page.locator(f"#row-{batch['id']}")
    expect(row).to_contain_text("completed with errors")
    row.get_by_role("checkbox").check()
    expect(page.locator("#selected-count")).to_have_text("1 selected")
    screenshots(page, "history-selected")
    page.get_by_role("button", name="Retry failed jobs").click()
    expect(page.locator("#toasts")).to_contain_text("1 accepted")

    page.get_by_role("link", name="retry me").click()
    expect(page.locator("#b-status")).to_have_text("completed", timeout=30_000)
    expect(page.locator("#f-errors")).to_have_text("0")
    assert get_batch(stack, batch["id"])["progress"]["completed"] == 8

    # The jobs table: filter by status, open a job's detail with its attempts.
    page.locator("#job-status").select_option("completed")
    expect(page.locator("#jobs tr")).to_have_count(8)
    failed_once = page.locator("#job-6")
    failed_once.get_by_role("button", name="Details").click()
    detail = page.locator("#job-detail-6")
    expect(detail).to_contain_text("DemoFailure")
    expect(detail).to_contain_text("#2")
    screenshots(page, "detail-retried")


def test_rollback_from_detail_shows_the_dry_run_plan_first(page: Page, stack: Stack) -> None:
    ids = import_templates(
        stack,
        [
            {"name": "Welcome", "category": "mail", "body": "Hello {{name}}, welcome aboard."},
            {"name": "Invoice due", "category": "billing", "body": "Invoice {{n}} is due."},
            {"name": "Reset", "category": "security", "body": "Reset link: {{link}}"},
        ],
    )
    started = consolidate(stack, ids, templates_per_job=1)
    batch_id, jobs = started["batch_id"], started["plan"]["jobs"]
    wait_status(stack, batch_id, "completed")
    # the plan reads the job views, which may trail the batch's view by a moment
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = httpx.get(
            f"{stack.url}/v1/batches/{batch_id}/jobs",
            params={"status": "completed"},
            headers=stack.headers,
            timeout=30,
        ).json()["items"]
        if len(listed) == jobs:
            break
        time.sleep(0.2)
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch_id}")
    # what the consolidation counted, summed over its completed jobs
    results = page.locator("#a-results")
    expect(results.locator("div", has_text="templates processed").locator("dd")).to_have_text("3")
    expect(results.locator("div", has_text="duplicates removed").locator("dd")).to_have_text("0")
    page.get_by_role("button", name="Roll back…").click()
    dialog = page.get_by_role("dialog", name="Roll back this batch?")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#rb-count")).to_have_text(
        f"{jobs} completed job{'' if jobs == 1 else 's'} would be compensated, most recent first."
    )
    expect(dialog.locator("#rb-plan li")).to_have_count(jobs)
    expect(dialog.locator("#rb-check")).to_have_text(
        f"Checked: the rollback would restore {jobs} job{'' if jobs == 1 else 's'}.",
        timeout=30_000,
    )
    screenshots(page, "rollback-plan")
    # The dry run changed nothing.
    assert get_batch(stack, batch_id)["status"] == "completed"

    dialog.get_by_role("button", name="Roll back", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text("Rollback started")
    expect(page.locator("#timeline")).to_contain_text("rollback requested")
    # the page shows the batch's new status without a reload
    expect(page.locator("#b-status")).to_contain_text("rolled back", timeout=60_000)
    assert get_batch(stack, batch_id)["status"] == "rolled_back"
    # the run's end keeps its own time and entry; the rollback's end comes after it
    timeline = page.locator("#timeline li")
    expect(timeline.filter(has_text="Finished")).to_have_count(1)
    expect(timeline.last).to_contain_text("rolled back")
    # the rollback's own progress, beside the run's: how many jobs it restored and when it ended
    rollback = page.locator("#b-rollback")
    expect(rollback).to_be_visible()
    expect(rollback.locator("#rollback-status")).to_contain_text("rolled back", timeout=30_000)
    expect(rollback.locator("#rollback-restored")).to_have_text(f"{jobs} / {jobs}")
    expect(rollback.get_by_role("progressbar", name="rollback progress")).to_have_attribute(
        "aria-valuenow", "100"
    )
    screenshots(page, "detail-rolled-back")
    # each job still says it completed, and that its effects were undone (the job views are
    # projected beside the batch's status, so a moment later at most)
    rows = page.locator("#jobs tr")
    deadline = time.monotonic() + 30
    while rows.filter(has_text="rolled back").count() < jobs and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload()
    expect(rows.filter(has_text="rolled back")).to_have_count(jobs)
    expect(rows.filter(has_text="completed")).to_have_count(jobs)
    screenshots(page, "detail-rolled-back-jobs")


def template(stack: Stack, template_id: str) -> dict[str, object]:
    found = httpx.get(
        f"{stack.url}/v1/library/templates/{template_id}", headers=stack.headers, timeout=30
    )
    assert found.status_code == 200, found.text
    return dict(found.json())


def test_a_rollback_that_would_overwrite_a_later_edit_is_refused_until_forced(
    page: Page, stack: Stack
) -> None:
    ids = import_templates(
        stack,
        [
            {"name": "Welcome", "category": "mail", "body": "Hello {{name}}, welcome aboard."},
            {"name": "Welcome copy", "category": "mail", "body": "hello {{who}},  welcome aboard."},
        ],
    )
    before = {i: template(stack, i) for i in ids}
    batch_id = consolidate(stack, ids)["batch_id"]
    wait_status(stack, batch_id, "completed")
    # one duplicate was merged into the other; someone then edits one the batch changed
    changed = next(i for i in ids if template(stack, i) != before[i])
    edited = httpx.patch(
        f"{stack.url}/v1/library/templates/{changed}",
        json={"body": "edited after the batch"},
        headers=stack.headers,
        timeout=30,
    )
    assert edited.status_code == 200, edited.text
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch_id}")
    dialog = page.get_by_role("dialog", name="Roll back this batch?")

    page.get_by_role("button", name="Roll back…").click()
    expect(dialog.locator("#rb-plan li")).to_have_count(1)
    # the dry run's check says beforehand that the rollback would be refused, and why
    check = dialog.locator("#rb-check")
    expect(check).to_contain_text("the rollback would be refused", timeout=30_000)
    expect(check).to_contain_text(f"changed after the job: {changed}")
    screenshots(page, "rollback-check-refused")
    dialog.get_by_role("button", name="Roll back", exact=True).click()
    rollback = page.locator("#b-rollback")
    expect(rollback.locator("#rollback-status")).to_contain_text("rollback failed", timeout=60_000)
    expect(rollback.locator("#rollback-why")).to_contain_text(f"changed after the job: {changed}")
    expect(rollback.locator("#rollback-restored")).to_have_text("nothing")
    screenshots(page, "detail-rollback-refused")
    assert get_batch(stack, batch_id)["status"] == "rollback_failed"

    page.get_by_role("button", name="Roll back…").click()
    expect(dialog.locator("#rb-plan li")).to_have_count(1)
    dialog.get_by_label("Overwrite changes made after the batch").check()
    dialog.get_by_role("button", name="Roll back", exact=True).click()
    expect(rollback.locator("#rollback-status")).to_contain_text("rolled back", timeout=60_000)
    assert get_batch(stack, batch_id)["status"] == "rolled_back"
    assert {i: template(stack, i) for i in ids} == before


def test_a_batch_whose_job_type_cannot_roll_back_is_not_offered_a_rollback(
    page: Page, stack: Stack
) -> None:
    batch = create_batch(
        stack, name="no way back", job_type="demo.sleep", items=[{"seconds": 0.01}] * 3
    )
    wait_status(stack, batch["id"], "completed")
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch['id']}")
    actions = page.get_by_role("toolbar", name="Batch actions")
    expect(actions.get_by_role("button", name="Duplicate")).to_be_visible()
    expect(actions.get_by_role("button", name="Roll back…")).to_be_hidden()
    screenshots(page, "rollback-not-offered")


def test_a_conflict_is_decided_from_the_detail_page(page: Page, stack: Stack) -> None:
    templates = [
        {"name": "Welcome", "category": "mail", "body": "Hello {{name}}, welcome aboard."},
        {"name": "welcome", "category": "mail", "body": "Hi {{name}}! Glad you joined us."},
    ]
    ids = import_templates(stack, templates)
    batch_id = consolidate(stack, ids, conflict_resolution="interactive")["batch_id"]
    wait_status(stack, batch_id, "completed_with_errors")  # its one job is parked
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch_id}")
    card = page.get_by_role("article", name="Conflict over the name Welcome")
    expect(card).to_be_visible(timeout=15_000)
    expect(card.locator(".body-preview")).to_have_count(2)
    expect(card).to_contain_text("Glad you joined us.")
    expect(page.locator("#f-awaitingdecision")).to_have_text("1")  # said apart: no error
    expect(page.locator("#f-errors")).to_have_text("0")
    parked = page.locator("#jobs tr[data-status]").first  # the job list says so too
    expect(parked).to_have_attribute("data-status", "awaiting_decision")
    expect(parked.locator(".badge")).to_have_text("awaiting decision")
    expect(parked.locator("td.warn")).to_contain_text("await a decision")  # not an error
    expect(page.locator(".chart .bar-wait")).to_have_count(1)  # drawn apart from errors
    expect(page.locator(".chart .bar-bad")).to_have_count(0)
    expect(page.locator(".key.wait")).to_have_text("awaiting a decision")
    screenshots(page, "detail-conflict")
    page.goto("/")  # the overview's finished batches say it apart too
    expect(page.locator(f"#recent #batch-{batch_id}")).to_contain_text(
        "0 failed · 1 awaiting a decision"
    )
    page.goto("/history")  # and so does the history table's Failed column
    failed = page.locator(f"#row-{batch_id} td.num").nth(1)
    expect(failed).to_have_text("0 · 1 awaiting")
    expect(failed).not_to_have_class(re.compile(r"\bbad\b"))
    screenshots(page, "history-awaiting")
    page.goto(f"/batches/{batch_id}")
    expect(card).to_be_visible(timeout=15_000)
    card.get_by_role("button", name=f"Keep {ids[1]}").click()
    expect(page.locator("#toasts")).to_contain_text(f"{ids[1]} keeps the name")
    expect(page.locator("#conflicts-section")).to_be_hidden()
    # the parked job runs again with the decision and the batch completes, without a reload
    expect(page.locator("#b-status")).to_contain_text("completed", timeout=60_000)
    expect(page.locator("#b-status")).not_to_contain_text("errors")
    kept = httpx.get(f"{stack.url}/v1/library/templates/{ids[1]}", headers=stack.headers)
    assert kept.json()["status"] == "active"
    screenshots(page, "detail-conflict-decided")


def test_the_report_dialog_shows_totals_and_failures_and_downloads_work(
    page: Page, stack: Stack
) -> None:
    batch = create_batch(
        stack,
        name="report me",
        job_type="demo.sleep",
        items=[{"seconds": 0.01}] * 6
        + [{"fail_probability": 1, "fail_with": "permanent", "error_class": "BadInput"}] * 2,
    )
    wait_status(stack, batch["id"], "completed_with_errors")
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch['id']}")
    page.get_by_role("button", name="Report").click()
    dialog = page.get_by_role("dialog", name="Report")
    facts = dialog.locator("#report-facts")
    expect(facts).to_contain_text("Success rate")
    expect(facts).to_contain_text("75.0%")
    expect(facts).to_contain_text("completed with errors")
    failed = dialog.locator("#report-failed tbody tr")
    expect(failed).to_have_count(2)
    expect(failed.first).to_contain_text("BadInput")
    screenshots(page, "detail-report")
    with page.expect_download() as csv_download:
        dialog.get_by_role("button", name="Download CSV").click()
    csv_path = csv_download.value.path()
    rows = Path(csv_path).read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("job_id,index,status")
    assert len(rows) == 9
    assert csv_download.value.suggested_filename == f"{batch['id']}-jobs.csv"
    dialog.get_by_role("button", name="Close").click()
    with page.expect_download() as zip_download:
        page.get_by_role("button", name="Export").click()
    assert zip_download.value.suggested_filename == f"{batch['id']}.zip"
    with zipfile.ZipFile(zip_download.value.path()) as archive:
        assert archive.namelist() == ["batch.json", "jobs.csv", "report.json", "events.jsonl"]


def test_a_draft_is_edited_and_started_from_its_page(page: Page, stack: Stack) -> None:
    batch = create_batch(
        stack, name="draft me", job_type="demo.sleep", draft=True, items=[{"seconds": 0.05}] * 3
    )
    assert batch["status"] == "draft"
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch['id']}")
    expect(page.locator("#b-status")).to_contain_text("draft")
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()  # nothing runs yet

    page.get_by_role("button", name="Edit…").click()
    dialog = page.locator("#edit-dialog")
    expect(dialog.get_by_label("Name")).to_have_value("draft me")
    dialog.get_by_label("Name").fill("")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("#e-ed-name")).to_have_text("Give the batch a name.")
    dialog.get_by_label("Name").fill("edited draft")
    dialog.get_by_label("Tags").fill("nightly, ui")
    dialog.get_by_label("Priority").select_option("critical")
    deadline = "2031-01-02T03:04"
    dialog.get_by_label("Deadline").fill(deadline)
    jobs_at_once = dialog.get_by_label("Jobs at once")
    jobs_at_once.fill("0")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("#e-ed-max-concurrent")).to_have_text("A whole number from 1 to 10,000.")
    jobs_at_once.fill("3")
    screenshots(page, "detail-edit-dialog")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#b-name")).to_have_text("edited draft")
    expect(page.locator("#b-meta")).to_contain_text("priority critical")
    expect(page.locator("#b-meta")).to_contain_text("tags nightly, ui")
    stored = get_batch(stack, batch["id"])
    assert (stored["name"], stored["tags"], stored["priority"]) == (
        "edited draft",
        ["nightly", "ui"],
        "critical",
    )
    assert stored["config"]["max_concurrent_jobs"] == 3
    local = page.evaluate(f"new Date({deadline!r}).toISOString()")  # the browser's local time
    assert stored["deadline"].replace("+00:00", "Z").startswith(local[:16])

    page.get_by_role("button", name="Start").click()
    expect(page.locator("#b-status")).to_contain_text("completed", timeout=30_000)
    expect(page.get_by_role("button", name="Start")).to_be_hidden()
    assert get_batch(stack, batch["id"])["progress"]["completed"] == 3
