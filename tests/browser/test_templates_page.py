"""Batch templates in the browser: create one from the form (and see a bad item refused next
to its field), share it with the tenant, instantiate it with overrides and land on the new
batch; save the wizard's batch as a template; create one from JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
import pytest
from browser_support import Console, get_batch, hold_first_read, screenshots, sign_in, wait_status
from playwright.sync_api import Page, expect
from stack_support import Stack

pytestmark = pytest.mark.browser


def api_get(stack: Stack, path: str) -> dict[str, object]:
    response = httpx.get(f"{stack.url}{path}", headers=stack.headers, timeout=30)
    response.raise_for_status()
    found: dict[str, object] = response.json()
    return found


def test_create_share_and_instantiate_a_template(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    console.allow(r"status of 422")
    name = f"tpl {unique[:8]}"
    category = f"cat-{unique[:6]}"
    sign_in(page, stack.admin_key)
    page.get_by_role("link", name="Templates").click()
    expect(page.locator("#t-groups")).to_have_attribute("aria-busy", "false")
    page.get_by_role("button", name="New template").click()
    dialog = page.get_by_role("dialog", name="New template")
    dialog.get_by_label("Name", exact=True).fill(name)
    dialog.get_by_label("Category").fill(category)
    dialog.get_by_label("Job type").select_option("demo.sleep")
    dialog.get_by_label("Priority").select_option("low")
    # An item that does not match demo.sleep's input schema: the server's 422 is shown there.
    dialog.get_by_label("Items").fill('{"seconds": "soon"}')
    dialog.get_by_role("button", name="Save template").click()
    expect(dialog.locator("#tfe-items")).to_contain_text("soon")
    screenshots(page, "templates-refused-item")
    dialog.get_by_label("Items").fill('{"seconds": 0.05}\n{"seconds": 0.05}\n{"seconds": 0.05}')
    dialog.get_by_role("button", name="Save template").click()
    expect(dialog).to_be_hidden()

    group = page.locator("section.category", has=page.get_by_role("heading", name=category))
    card = group.locator("article.template", has_text=name)
    expect(card).to_contain_text("3 items")
    expect(card).to_contain_text("private")

    # Share it with the whole tenant.
    card.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("dialog", name=f"Edit {name}")
    editor.get_by_label("Visible to").select_option("tenant")
    editor.get_by_role("button", name="Save changes").click()
    expect(editor).to_be_hidden()
    expect(card).to_contain_text("everyone in the tenant")
    template_id = card.get_attribute("id").removeprefix("template-")  # type: ignore[union-attr]
    assert api_get(stack, f"/v1/templates/{template_id}")["visibility"] == "tenant"
    screenshots(page, "templates")

    # Instantiate with overrides: on to the new batch, which runs the template's items.
    card.get_by_role("button", name="Use…").click()
    use = page.get_by_role("dialog", name=f"Start a batch from {name}")
    use.get_by_label("Batch name").fill(f"{name} run")
    use.get_by_label("Priority").select_option("critical")
    use.get_by_label("Deadline").fill("2020-01-01T09:00")
    use.get_by_role("button", name="Start batch").click()
    expect(use.locator("#ufe-deadline")).to_have_text(
        "Choose a time in the future, or leave it empty."
    )
    deadline = (datetime.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    use.get_by_label("Deadline").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
    screenshots(page, "templates-instantiate")
    use.get_by_role("button", name="Start batch").click()
    page.wait_for_url("**/batches/b_*")
    batch_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name=f"{name} run")).to_be_visible()
    # the batch says where it came from, with a link back
    origin = page.locator("#b-meta").get_by_role("link", name=template_id)
    expect(origin).to_have_attribute("href", f"/templates#{template_id}")
    expect(page.locator("#b-status")).to_have_text("completed", timeout=30_000)
    batch = get_batch(stack, batch_id)
    assert batch["priority"] == "critical"
    assert datetime.fromisoformat(batch["deadline"]) == deadline.astimezone()
    assert batch["progress"]["total"] == 3
    assert api_get(stack, f"/v1/templates/{template_id}")["usage_count"] == 1


def test_a_template_without_items_asks_for_them_and_json_works(
    page: Page, stack: Stack, unique: str
) -> None:
    # (refused before anything is sent: no 4xx reaches the console)
    name = f"json tpl {unique[:8]}"
    sign_in(page, stack.admin_key)
    page.goto("/templates")
    expect(page.locator("#t-groups")).to_have_attribute("aria-busy", "false")
    page.get_by_role("button", name="New template").click()
    dialog = page.get_by_role("dialog", name="New template")
    dialog.get_by_role("tab", name="JSON").click()
    dialog.get_by_label("Template as JSON").fill("{not json")
    dialog.get_by_role("button", name="Save template").click()
    expect(dialog.locator("#tfe-json")).to_contain_text("Not valid JSON")
    body = {"name": name, "category": "json-made", "spec": {"job_type": "demo.sleep"}}
    dialog.get_by_label("Template as JSON").fill(json.dumps(body))
    dialog.get_by_role("button", name="Save template").click()
    expect(dialog).to_be_hidden()
    card = page.locator("article.template", has_text=name)
    expect(card).to_contain_text("items given at each use")

    card.get_by_role("button", name="Use…").click()
    use = page.get_by_role("dialog", name=f"Start a batch from {name}")
    use.get_by_role("button", name="Start batch").click()
    expect(use.locator("#ufe-items")).to_contain_text("give at least one")
    use.get_by_label("Items").fill('{"seconds": 0.01}\n{"seconds": 0.01}')
    use.get_by_role("button", name="Start batch").click()
    page.wait_for_url("**/batches/b_*")
    batch = wait_status(stack, page.url.rsplit("/", 1)[1], "completed")
    assert batch["progress"]["total"] == 2
    assert batch["name"] == name


def test_the_wizard_saves_its_batch_as_a_template(page: Page, stack: Stack, unique: str) -> None:
    title = f"from wizard {unique[:8]}"
    sign_in(page, stack.admin_key)
    page.goto("/new")
    page.get_by_label("Name", exact=True).fill("wizard source")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Job type").select_option("demo.sleep")
    page.get_by_role("tab", name="Paste JSON lines").click()
    page.get_by_label("One JSON object per line").fill('{"seconds": 0.1}\n{"seconds": 0.2}')
    page.get_by_role("button", name="Add lines").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Save as template…").click()
    dialog = page.get_by_role("dialog", name="Save as template")
    dialog.get_by_label("Title of the template").fill(title)
    dialog.get_by_label("Category").fill("from-wizard")
    dialog.get_by_role("button", name="Save template").click()
    expect(page.locator("#toasts")).to_contain_text(f"Saved template {title}")
    found = api_get(stack, f"/v1/templates?q={title}")["items"]
    assert isinstance(found, list)
    assert len(found) == 1
    assert found[0]["spec"]["items"] == [{"seconds": 0.1}, {"seconds": 0.2}]
    assert found[0]["category"] == "from-wizard"


def test_a_batch_is_saved_as_a_template_from_its_detail_page(
    page: Page, stack: Stack, console: Console, unique: str
) -> None:
    created = httpx.post(
        f"{stack.url}/v1/batches",
        json={
            "name": f"source {unique}",
            "job_type": "demo.sleep",
            "priority": "high",
            "tags": ["nightly"],
            "items": [{"seconds": 0}, {"seconds": 0.01}],
            "config": {"max_concurrent_jobs": 7},
        },
        headers=stack.headers,
    )
    assert created.status_code == 201, created.text
    batch_id = created.json()["id"]
    wait_status(stack, batch_id, "completed")
    sign_in(page, stack.admin_key)
    page.goto(f"/batches/{batch_id}")
    page.get_by_role("button", name="Save as template…").click()
    dialog = page.get_by_role("dialog", name="Save as a template")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Template name").fill(f"like {unique}")
    dialog.get_by_label("Category").fill("nightly jobs")
    screenshots(page, "detail-save-template")
    dialog.get_by_role("button", name="Save template").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text(f"Saved as template like {unique}")

    found = httpx.get(
        f"{stack.url}/v1/templates", params={"q": f"like {unique}"}, headers=stack.headers
    ).json()["items"]
    assert len(found) == 1
    spec = found[0]["spec"]
    assert found[0]["category"] == "nightly jobs"
    assert (spec["job_type"], spec["priority"], spec["tags"]) == ("demo.sleep", "high", ["nightly"])
    assert spec["config"]["max_concurrent_jobs"] == 7
    assert spec["items"] == [{"seconds": 0}, {"seconds": 0.01}]
    assert console.unexpected() == []


def test_the_templates_page_shows_the_filter_when_the_first_read_answers_late(
    page: Page, stack: Stack, unique: str
) -> None:
    for name in (f"late wanted {unique}", f"late other {unique}"):
        made = httpx.post(
            f"{stack.url}/v1/templates",
            json={
                "name": name,
                "category": f"late{unique[:6]}",
                "spec": {"job_type": "demo.sleep"},
            },
            headers=stack.headers,
            timeout=30,
        )
        assert made.status_code == 201, made.text
    # the page's first read (every template), answered late
    held = hold_first_read(page, "**/v1/templates?*", unless="q=")
    sign_in(page, stack.admin_key)
    page.goto("/templates")
    page.get_by_label("Name contains").fill(f"late wanted {unique}")
    page.get_by_role("button", name="Filter").click()
    cards = page.locator("article.template")
    expect(cards).to_have_count(1)
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_timeout(500)
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text(f"late wanted {unique}")
