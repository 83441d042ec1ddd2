"""The new-batch wizard, driven like a person would: four steps, errors next to the field,
and a batch that runs to 100% on the detail page without a reload."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from browser_support import (
    Console,
    assert_not_reloaded,
    broken_template,
    get_batch,
    hold_first_read,
    import_templates,
    mark_document,
    screenshots,
    sign_in,
)
from playwright.sync_api import Locator, Page, Route, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def to_review(page: Page, name: str, copies: int = 1) -> None:
    """Through the wizard's first three steps: `name`, then `copies` demo.sleep items made
    with the item form, the defaults kept."""
    page.goto("/new")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Job type").select_option("demo.sleep")
    page.get_by_label("How many items like this").fill(str(copies))
    page.get_by_role("button", name="Add items").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()


def test_wizard_creates_a_batch_that_reaches_100_percent_live(page: Page, stack: Stack) -> None:
    sign_in(page, stack.admin_key)
    screenshots(page, "overview-empty")
    page.get_by_role("link", name="New batch").first.click()
    expect(page.get_by_role("heading", name="New batch")).to_be_visible()

    page.get_by_label("Name").fill("wizard batch")
    page.get_by_label("Description").fill("made in the browser")
    page.get_by_label("Priority").select_option("high")
    page.get_by_label("Tags").fill("ui, demo")
    deadline = (datetime.now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    page.get_by_label("Deadline (optional").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("If the deadline passes with jobs left").select_option("cancel")
    screenshots(page, "wizard-1-basics")
    page.get_by_role("button", name="Next").click()

    page.get_by_label("Job type").select_option("demo.sleep")
    # The form is generated from the job type's input schema.
    page.get_by_label("Seconds").fill("0.2")
    page.get_by_label("How many items like this").fill("24")
    page.get_by_role("button", name="Add items").click()
    page.get_by_role("tab", name="Paste JSON lines").click()
    page.get_by_label("One JSON object per line").fill('{"seconds": 0.1}\n{"seconds": 0.3}')
    page.get_by_role("button", name="Add lines").click()
    page.get_by_role("tab", name="Upload a file").click()
    page.get_by_label("A .jsonl file").set_input_files(
        files=[
            {
                "name": "items.jsonl",
                "mimeType": "application/x-ndjson",
                "buffer": b'{"seconds": 0.1}\n{"seconds": 0.2}\n',
            }
        ]
    )
    expect(page.locator("#item-count")).to_have_text("28 items")
    screenshots(page, "wizard-2-items")
    page.get_by_role("button", name="Next").click()

    page.get_by_label("Max concurrent jobs").fill("4")
    page.get_by_label("Max attempts per job").fill("2")
    page.get_by_label("Stop the batch at the first failed job").check()
    # demo.sleep keeps no backups: rolling it back on failure is not offered, and why is said
    expect(page.get_by_label("Roll back what the batch changed if it fails")).to_be_disabled()
    expect(page.locator("#rollback-note")).to_have_text(
        "demo.sleep cannot be rolled back: it keeps no backups."
    )
    screenshots(page, "wizard-3-safety")
    page.get_by_role("button", name="Next").click()

    review = page.locator("#review")
    expect(review).to_contain_text("wizard batch")
    expect(review).to_contain_text("28")
    expect(review).to_contain_text("4 at a time")
    expect(review).to_contain_text("stop at first failure")
    expect(review).to_contain_text("if missed: cancel the batch")
    screenshots(page, "wizard-4-review")
    page.get_by_role("button", name="Start now").click()

    page.wait_for_url(re.compile(r"/batches/b_[0-9a-z]+$"))
    batch_id = page.url.rsplit("/", 1)[1]
    mark_document(page)
    expect(page.get_by_role("heading", name="wizard batch")).to_be_visible()
    expect(page.locator("#f-done")).to_have_text("100.0%", timeout=60_000)
    expect(page.locator("#b-status")).to_have_text("completed", timeout=15_000)
    expect(page.get_by_role("progressbar", name="batch progress")).to_have_attribute(
        "aria-valuenow", "100"
    )
    assert_not_reloaded(page)
    screenshots(page, "detail-completed")

    stored = get_batch(stack, batch_id)
    assert stored["priority"] == "high"
    assert stored["tags"] == ["ui", "demo"]
    assert stored["config"]["max_concurrent_jobs"] == 4
    assert stored["config"]["retry"]["max_attempts"] == 2
    assert stored["config"]["stop_on_error"] is True
    assert stored["config"]["on_deadline_missed"] == "cancel"
    # the browser's local time, stored as the same instant
    assert datetime.fromisoformat(stored["deadline"]) == deadline.astimezone()
    assert stored["progress"]["completed"] == 28


def test_a_sequential_batch_stopped_at_an_error_shows_the_jobs_it_skipped(
    page: Page, stack: Stack
) -> None:
    sign_in(page, stack.admin_key)
    page.goto("/new")
    page.get_by_label("Name").fill("one by one")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Job type").select_option("demo.sleep")
    page.get_by_role("tab", name="Paste JSON lines").click()
    failing = '{"seconds": 0.1, "fail_first_attempts": 1, "fail_with": "permanent"}'
    skipping = '{"skip_reason": "nothing new since Tuesday"}'  # its job type skips it
    warning = '{"seconds": 0.1, "warnings": ["no size given: took 0", "a duplicate"]}'
    lines = [warning, skipping, failing, '{"seconds": 0.1}', '{"seconds": 0.1}']
    page.get_by_label("One JSON object per line").fill("\n".join(lines))
    page.get_by_role("button", name="Add lines").click()
    page.get_by_role("button", name="Next").click()

    concurrency = page.get_by_label("Max concurrent jobs")
    expect(concurrency).to_be_enabled()
    page.get_by_label("Sequential: one at a time, in item order").check()
    expect(concurrency).to_be_disabled()  # one at a time says it all
    page.get_by_label("Stop the batch at the first failed job").check()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#review")).to_contain_text("one at a time, in item order")
    page.get_by_role("button", name="Start now").click()

    page.wait_for_url(re.compile(r"/batches/b_[0-9a-z]+$"))
    status = page.locator("#b-status")
    expect(status).to_contain_text("failed", timeout=60_000)
    expect(status).to_contain_text("sequential")
    counts = page.locator("#b-counts")
    expect(counts.locator("div", has_text="skipped").locator("dd")).to_have_text("3")
    expect(page.get_by_role("button", name="Retry")).to_be_visible()
    rows = page.locator("#jobs tr")
    deadline = time.monotonic() + 30
    while rows.filter(has_text="skipped").count() < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload()
    expect(rows.filter(has_text="skipped")).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("completed")
    expect(rows.nth(0)).to_contain_text("⚠ no size given: took 0 (+1 more)")
    expect(rows.nth(1)).to_contain_text("nothing new since Tuesday")  # the job type's reason
    expect(rows.nth(2)).to_contain_text("failed")
    expect(rows.nth(3)).to_contain_text("the batch stopped at a failed job")
    screenshots(page, "detail-sequential-skipped")


def test_start_pressed_again_after_a_lost_answer_makes_one_batch(
    page: Page, stack: Stack, console: Console
) -> None:
    console.allow("ERR_CONNECTION_RESET")  # the answer this test throws away
    sign_in(page, stack.admin_key)
    name = f"lost answer {uuid.uuid4().hex[:8]}"
    to_review(page, name, copies=2)
    made: list[str] = []

    def lose_the_answer(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        made.append(route.fetch().json()["id"])  # the server makes the batch...
        route.abort("connectionreset")  # ...and its answer never reaches the page

    page.route("**/v1/batches", lose_the_answer)
    start = page.get_by_role("button", name="Start now")
    start.click()
    expect(page.locator("#e-submit")).to_contain_text("trying again is safe")
    expect(start).to_be_enabled()
    page.unroute("**/v1/batches", lose_the_answer)
    start.click()
    page.wait_for_url(re.compile(r"/batches/b_[0-9a-z]+$"))
    assert page.url.endswith(f"/batches/{made[0]}")
    listed = httpx.get(
        f"{stack.url}/v1/batches", params={"q": name}, headers=stack.headers, timeout=30
    ).json()
    assert [b["id"] for b in listed["items"]] == made


def test_wizard_shows_errors_next_to_the_field(page: Page, stack: Stack, console: Console) -> None:
    sign_in(page, stack.admin_key)
    page.goto("/new")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#e-name")).to_have_text("Give the batch a name.")
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_be_focused()

    page.get_by_label("Name").fill("bad items")
    # the error goes as the field is changed
    expect(page.locator("#e-name")).to_be_empty()
    expect(page.get_by_label("Name")).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Deadline (optional").fill("2020-01-01T10:00")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#e-deadline")).to_have_text(
        "Choose a time in the future, or leave it empty."
    )
    page.get_by_label("Deadline (optional").fill("")
    expect(page.locator("#e-deadline")).to_be_empty()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#e-job_type")).to_have_text("Choose a job type.")
    expect(page.locator("#e-items")).to_have_text("Add at least one item.")

    page.get_by_label("Job type").select_option("demo.sleep")
    page.get_by_label("Seconds").fill("-1")
    page.get_by_role("button", name="Add items").click()
    expect(page.locator("[data-error-for='item.seconds']")).to_have_text("Must be at least 0.")

    page.get_by_role("tab", name="Paste JSON lines").click()
    page.get_by_label("One JSON object per line").fill('{"seconds": 0.1}\nnot json')
    page.get_by_role("button", name="Add lines").click()
    expect(page.locator("#e-lines")).to_contain_text("Line 2 is not a JSON object")

    # Items the browser cannot check are refused by the server, shown next to the items.
    page.get_by_label("One JSON object per line").fill('{"seconds": 0.1}\n{"colour": "red"}')
    page.get_by_role("button", name="Add lines").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Max concurrent jobs").fill("0")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#e-concurrency")).not_to_be_empty()
    page.get_by_label("Max concurrent jobs").fill("5")
    page.get_by_role("button", name="Next").click()
    screenshots(page, "wizard-review-before-error")
    console.allow(r"status of 422")
    page.get_by_role("button", name="Start now").click()
    expect(page.locator("#e-items")).to_contain_text("item 1")
    expect(page.locator("#e-items")).to_contain_text("colour")
    expect(page.locator(".step[data-step='2']")).to_be_visible()
    screenshots(page, "wizard-server-error")


def test_wizard_schedules_the_batch_with_its_next_runs_shown(
    page: Page, stack: Stack, console: Console
) -> None:
    sign_in(page, stack.admin_key)
    to_review(page, "nightly from the wizard", copies=3)

    page.get_by_label("On a schedule").check()
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_label("Cron expression").fill("30 2 * * 1-5")
    runs = page.locator("#next-runs li")
    expect(runs).to_have_count(5)
    expect(runs.first).to_contain_text("02:30")
    expect(runs.first).to_contain_text(re.compile(r"Mon|Tue|Wed|Thu|Fri"))
    # a bad expression is named next to the field, and nothing is listed
    console.allow(r"status of 422")
    page.get_by_label("Cron expression").fill("61 * * * *")
    expect(page.locator("#e-cron")).to_contain_text("not a cron expression")
    expect(runs).to_have_count(0)
    page.get_by_label("Cron expression").fill("30 2 * * 1-5")
    expect(runs).to_have_count(5)
    screenshots(page, "wizard-4-schedule")
    page.get_by_role("button", name="Create schedule").click()

    page.wait_for_url(re.compile(r"/schedules"))
    expect(page.get_by_text("nightly from the wizard")).to_be_visible()
    found = httpx.get(
        f"{stack.url}/v1/schedules", params={"q": "nightly from the wizard"}, headers=stack.headers
    ).json()["items"]
    assert len(found) == 1
    schedule = found[0]
    assert (schedule["cron"], schedule["timezone"]) == ("30 2 * * 1-5", "Europe/Berlin")
    assert schedule["spec"]["job_type"] == "demo.sleep"
    assert len(schedule["spec"]["items"]) == 3
    assert console.unexpected() == []


def test_wizard_starts_the_batch_once_later(page: Page, stack: Stack) -> None:
    sign_in(page, stack.admin_key)
    to_review(page, "tonight, once")

    page.get_by_label("Once, later").check()
    page.get_by_label("Start at").fill("2020-01-01T02:00")
    page.get_by_role("button", name="Schedule it").click()
    expect(page.locator("#e-start_at")).to_have_text("Choose when it starts: a time in the future.")
    at = (datetime.now() + timedelta(minutes=30)).replace(second=0, microsecond=0)
    page.get_by_label("Start at").fill(at.strftime("%Y-%m-%dT%H:%M"))
    screenshots(page, "wizard-4-later")
    page.get_by_role("button", name="Schedule it").click()

    page.wait_for_url(re.compile(r"/schedules"))
    found = httpx.get(
        f"{stack.url}/v1/schedules", params={"q": "tonight, once"}, headers=stack.headers
    ).json()["items"]
    [schedule] = found
    assert datetime.fromisoformat(schedule["run_at"]) == at.astimezone()
    assert schedule["next_runs"] == [schedule["run_at"]]
    row = page.locator(f"#schedule-{schedule['id']}")
    expect(row).to_contain_text("once, ")
    expect(row).to_contain_text(at.strftime("%H:%M"))


def test_wizard_consolidates_chosen_library_templates(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    body = "Dear {{name}}, your order {{order}} has shipped."
    templates = [
        {"name": f"shipped {unique}", "category": f"cat{unique}", "body": body},
        {"name": f"shipped copy {unique}", "category": f"cat{unique}", "body": body.upper()},
        {"name": f"refund {unique}", "category": f"cat{unique}", "body": "Refund on its way."},
        {"name": f"other {unique}", "category": "elsewhere", "body": "Not chosen."},
    ]
    ids = import_templates(stack, templates)
    # and one the API did not write (a bulk load): shown, but not to be chosen
    with broken_template(stack, category=f"cat{unique}") as broken:
        _consolidate_in_the_wizard(page, stack, console, unique, ids, broken)


def _library_step(page: Page, stack: Stack, name: str, category: str) -> Locator:
    """Signs in, names a new batch and opens the consolidation's template choice on the
    library's `category`; the rows of templates shown."""
    sign_in(page, stack.admin_key)
    page.goto("/new")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Job type").select_option("templates.consolidate")
    page.get_by_label("Library category").fill(category)
    return page.locator("#lib-rows tr")


def _consolidate_in_the_wizard(
    page: Page, stack: Stack, console: Console, unique: str, ids: list[str], broken: str
) -> None:
    rows = _library_step(page, stack, f"tidy {unique}", f"cat{unique}")
    expect(rows).to_have_count(4)
    expect(rows.filter(has_text="Not a whole template")).to_have_text(
        re.compile(r"Not a whole template: no name, no body, no created_at, no updated_at")
    )
    expect(page.get_by_label(f"Consolidate {broken} ({broken})")).to_be_disabled()
    page.get_by_label("Select every template shown").check()
    expect(page.locator("#lib-count")).to_have_text("3 templates selected")
    page.get_by_label("Merge: keep one").check()
    screenshots(page, "wizard-2-consolidation")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Backups").select_option("automatic")
    expect(page.get_by_label("Roll back what the batch changed if it fails")).to_be_enabled()
    expect(page.locator("#rollback-note")).to_be_hidden()
    page.get_by_role("button", name="Next").click()

    review = page.locator("#review")
    expect(review).to_contain_text("Duplicates found")
    expect(review.locator("dd").nth(3)).to_have_text("3")  # templates
    expect(review.locator("dd").nth(4)).to_have_text("1")  # one exact duplicate
    expect(page.get_by_label("Start now")).to_be_checked()
    screenshots(page, "wizard-4-consolidation-plan")
    page.get_by_role("button", name="Start now").click()
    page.wait_for_url(re.compile(r"/batches/b_[0-9a-z]+$"))
    expect(page.locator("#b-status")).to_have_text("completed", timeout=60_000)
    # which of the two duplicates stays canonical is the consolidation's choice
    deadline = time.monotonic() + 15
    while True:
        statuses = sorted(
            httpx.get(f"{stack.url}/v1/library/templates/{i}", headers=stack.headers).json()[
                "status"
            ]
            for i in ids[:2]
        )
        if statuses == ["active", "merged"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert statuses == ["active", "merged"]
    untouched = httpx.get(f"{stack.url}/v1/library/templates/{ids[3]}", headers=stack.headers)
    assert untouched.json()["status"] == "active"
    assert console.unexpected() == []


def test_wizard_puts_a_consolidation_on_a_schedule(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    body = "See you at {{place}} on {{day}}."
    ids = import_templates(
        stack,
        [
            {"name": f"invite {unique}", "category": f"inv{unique}", "body": body},
            {"name": f"invite copy {unique}", "category": f"inv{unique}", "body": body.upper()},
        ],
    )
    expect(_library_step(page, stack, f"weekly tidy {unique}", f"inv{unique}")).to_have_count(2)
    page.get_by_label("Select every template shown").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#review")).to_contain_text("Duplicates found")

    page.get_by_label("On a schedule").check()
    page.get_by_label("Timezone").fill("Europe/Berlin")
    page.get_by_label("Cron expression").fill("0 4 * * 0")
    expect(page.locator("#next-runs li")).to_have_count(5)
    page.get_by_role("button", name="Create schedule").click()

    page.wait_for_url(re.compile(r"/schedules"))
    found = httpx.get(
        f"{stack.url}/v1/schedules", params={"q": f"weekly tidy {unique}"}, headers=stack.headers
    ).json()["items"]
    [schedule] = found
    assert (schedule["cron"], schedule["timezone"]) == ("0 4 * * 0", "Europe/Berlin")
    assert schedule["spec"] is None
    assert sorted(schedule["consolidation"]["template_ids"]) == sorted(ids)
    row = page.locator(f"#schedule-{schedule['id']}")
    expect(row).to_contain_text("Consolidates (merge) 2 chosen templates")
    screenshots(page, "schedules-consolidation")
    # a run now: the consolidation is planned and its batch made
    run = httpx.post(
        f"{stack.url}/v1/schedules/{schedule['id']}/trigger", headers=stack.headers, timeout=30
    ).json()
    assert run["outcome"] == "created", run
    batch = get_batch(stack, run["batch_id"])
    assert batch["job_type"] == "templates.consolidate"
    assert console.unexpected() == []


def test_the_library_search_shows_the_last_search_when_an_earlier_one_answers_late(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    import_templates(
        stack,
        [
            {"name": f"late a {unique}", "category": f"late{unique}", "body": "a"},
            {"name": f"late b {unique}", "category": f"late{unique}", "body": "b"},
            {"name": f"late other {unique}", "category": f"other{unique}", "body": "c"},
        ],
    )
    # the first search (the whole library), answered late
    held = hold_first_read(page, "**/v1/library/templates?*", unless="category=")
    rows = _library_step(page, stack, f"late {unique}", f"late{unique}")
    expect(rows).to_have_count(2)
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_timeout(500)
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=f"late other {unique}")).to_have_count(0)
    assert console.unexpected() == []
