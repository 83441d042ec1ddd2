"""`batchyard templates ...` and `batchyard schedules ...` run as a user runs them, against
the real stack: spec files, overrides, next run times, triggers, runs, and clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cli_support import Cli, cli_env, created_id, no_traceback, wait_status
from stack_support import Stack
from webhook_support import receiving

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(stack: Stack, tmp_path: Path) -> Cli:
    # A fixed zone for "local time", so the expected wall-clock times are known.
    return Cli(cli_env(stack, tmp_path, TZ="Asia/Tokyo"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_templates_create_list_show_update_instantiate_delete(
    run: Cli, tmp_path: Path, unique: str
) -> None:
    category = f"cli-{unique[:6]}"
    spec = write(
        tmp_path / "tpl.yaml",
        f"""
name: cli template {unique}
category: {category}
spec:
  job_type: demo.sleep
  priority: low
  tags: [from-cli]
  items:
    - {{seconds: 0.01}}
    - {{seconds: 0.02}}
""",
    )
    created = run("templates", "create", "-f", str(spec), "--json")
    assert created.returncode == 0, created.stderr
    template = json.loads(created.stdout)
    assert template["category"] == category
    assert template["spec"]["items"] == [{"seconds": 0.01}, {"seconds": 0.02}]

    listed = run("templates", "list", "--category", category)
    assert listed.returncode == 0, listed.stderr
    assert f"cli template {unique}" in listed.stdout
    assert template["id"] in listed.stdout
    categories = json.loads(run("templates", "list", "--categories", "--json").stdout)
    assert {"category": category, "templates": 1} in categories

    updated = run("templates", "update", template["id"], "--visibility", "tenant", "--share", "bob")
    assert updated.returncode == 0, updated.stderr
    shown = json.loads(run("templates", "show", template["id"], "--json").stdout)
    assert shown["visibility"] == "tenant"
    assert shown["shared_with"] == ["bob"]
    assert "tenant" in run("templates", "show", template["id"]).stdout

    items = write(tmp_path / "items.jsonl", '{"seconds": 0}\n{"seconds": 0}\n{"seconds": 0}\n')
    made = run(
        "templates", "instantiate", template["id"], "--name", "cli from template",
        "--priority", "critical", "--items-file", str(items), "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    batch = json.loads(made.stdout)
    assert batch["name"] == "cli from template"
    assert batch["priority"] == "critical"
    done = wait_status(run, batch["id"], {"completed"})
    assert done["progress"]["total"] == 3  # the given items replaced the template's
    again = json.loads(run("templates", "show", template["id"], "--json").stdout)
    assert again["usage_count"] == 1
    made_from = json.loads(run("list", "--template", template["id"], "--json").stdout)
    assert [b["id"] for b in made_from["items"]] == [batch["id"]]
    assert f"template {template['id']}" in run("status", batch["id"]).stdout

    deleted = run("templates", "delete", template["id"])
    assert deleted.returncode == 0, deleted.stderr
    gone = run("templates", "show", template["id"])
    assert gone.returncode == 3
    assert f"no template {template['id']}" in gone.stderr


def test_templates_refuse_bad_input_with_a_message_and_exit_code(run: Cli, tmp_path: Path) -> None:
    bad_item = write(
        tmp_path / "bad.json",
        json.dumps(
            {"name": "bad", "spec": {"job_type": "demo.sleep", "items": [{"seconds": "x"}]}}
        ),
    )
    refused = run("templates", "create", "-f", str(bad_item))
    assert refused.returncode == 5
    assert "'x' is not of type 'number'" in refused.stderr
    no_traceback(refused)

    broken = write(tmp_path / "broken.yaml", "name: [unclosed\n")
    unreadable = run("templates", "create", "-f", str(broken))
    assert unreadable.returncode == 2
    assert "not valid YAML" in unreadable.stderr
    no_traceback(unreadable)

    assert run("templates", "create").returncode == 2  # no spec file
    missing = run("templates", "instantiate", "t_nope", "--item", '{"seconds": 0}')
    assert missing.returncode == 3
    no_items = write(
        tmp_path / "noitems.json", json.dumps({"name": "byo", "spec": {"job_type": "demo.sleep"}})
    )
    template_id = json.loads(run("templates", "create", "-f", str(no_items), "--json").stdout)["id"]
    needs_items = run("templates", "instantiate", template_id)
    assert needs_items.returncode == 5
    assert "items" in needs_items.stderr.lower()
    not_json = run("templates", "instantiate", template_id, "--item", "{seconds: 1")
    assert not_json.returncode == 2
    no_traceback(not_json)


def test_schedules_from_create_to_runs(run: Cli, tmp_path: Path, unique: str) -> None:
    tpl = write(
        tmp_path / "tpl.json",
        json.dumps({"name": f"for schedule {unique}", "spec": {"job_type": "demo.sleep"}}),
    )
    template_id = json.loads(run("templates", "create", "-f", str(tpl), "--json").stdout)["id"]
    spec = write(
        tmp_path / "schedule.yaml",
        f"""
name: cli schedule {unique}
cron: "30 7 * * 1-5"
timezone: America/New_York
overlap: queue
catch_up: latest
template_id: {template_id}
overrides:
  items: [{{seconds: 0.01}}]
""",
    )
    created = run("schedules", "create", "-f", str(spec), "--json")
    assert created.returncode == 0, created.stderr
    schedule = json.loads(created.stdout)
    assert schedule["overlap"] == "queue"
    assert len(schedule["next_runs"]) == 5

    shown = run("schedules", "show", schedule["id"])
    assert shown.returncode == 0, shown.stderr
    # 07:30 in New York is 21:30 or 20:30 in Tokyo (the TZ of this run), by daylight saving.
    assert shown.stdout.count("07:30:00 E") == 5  # EST or EDT
    assert "In America/New_York" in shown.stdout
    assert shown.stdout.count(":30:00 JST") == 5

    disabled = run("schedules", "disable", schedule["id"], "--json")
    assert json.loads(disabled.stdout)["next_runs"] == []
    listed = json.loads(run("schedules", "list", "--disabled", "--json").stdout)
    assert schedule["id"] in [s["id"] for s in listed["items"]]
    assert "Enabled" in run("schedules", "enable", schedule["id"]).stdout

    triggered = run("schedules", "trigger", schedule["id"])
    assert triggered.returncode == 0, triggered.stderr
    assert "created batch b_" in triggered.stdout
    runs = json.loads(run("schedules", "runs", schedule["id"], "--json").stdout)["items"]
    assert len(runs) == 1
    assert runs[0]["trigger"] == "manual"
    assert runs[0]["outcome"] == "created"
    wait_status(run, runs[0]["batch_id"], {"completed"})
    table = run("schedules", "runs", schedule["id"])
    assert runs[0]["batch_id"] in table.stdout
    assert "created" in table.stdout

    updated = run("schedules", "update", schedule["id"], "--cron", "0 12 * * *", "--json")
    assert json.loads(updated.stdout)["cron"] == "0 12 * * *"
    # --at makes it a one-run schedule, shown as such
    once = json.loads(run("schedules", "update", schedule["id"], "--at", "3h", "--json").stdout)
    assert once["run_at"] is not None
    assert len(once["next_runs"]) == 1
    assert "once, " in run("schedules", "list", "--q", f"cli schedule {unique}").stdout
    assert run("schedules", "delete", schedule["id"]).returncode == 0
    assert run("schedules", "show", schedule["id"]).returncode == 3


def test_a_consolidation_schedule_from_a_file(run: Cli, tmp_path: Path, unique: str) -> None:
    spec = write(
        tmp_path / "tidy.yaml",
        f"""
name: tidy {unique}
cron: "0 3 * * 0"
consolidation:
  filter: {{category: lib-{unique}}}
  operation: archive
""",
    )
    created = run("schedules", "create", "-f", str(spec), "--json")
    assert created.returncode == 0, created.stderr
    schedule = json.loads(created.stdout)
    assert schedule["consolidation"]["operation"] == "archive"
    shown = run("schedules", "show", schedule["id"])
    assert f'a consolidation (archive) of the templates {{"category":"lib-{unique}"}}' in (
        shown.stdout.replace("\n", " ")
    )
    # nothing in that category yet: the run is recorded as failed, with the reason
    triggered = run("schedules", "trigger", schedule["id"], "--json")
    assert json.loads(triggered.stdout)["outcome"] == "failed"
    assert "the scope holds no active templates" in json.loads(triggered.stdout)["detail"]
    assert run("schedules", "delete", schedule["id"]).returncode == 0


def test_schedules_refuse_bad_input(run: Cli, tmp_path: Path) -> None:
    bad_cron = run("schedules", "create", "-n", "x", "--cron", "61 * * * *", "--template", "t_x")
    assert bad_cron.returncode == 5
    assert "not a cron expression" in bad_cron.stderr
    no_traceback(bad_cron)
    bad_zone = run(
        "schedules", "create", "-n", "x", "--cron", "* * * * *", "--tz", "Mars/Olympus",
        "--template", "t_x",
    )  # fmt: skip
    assert bad_zone.returncode == 5
    assert "not a known timezone" in bad_zone.stderr
    no_source = run("schedules", "create", "-n", "x", "--cron", "* * * * *")
    assert no_source.returncode == 2
    assert "--template" in no_source.stderr
    bad_overlap = run("schedules", "create", "-n", "x", "--cron", "* * * * *", "--overlap", "maybe")
    assert bad_overlap.returncode == 2
    no_when = run("schedules", "create", "-n", "x", "--template", "t_x")
    assert no_when.returncode == 2
    assert "--cron or --at" in no_when.stderr
    bad_at = run("schedules", "create", "-n", "x", "--at", "soon", "--template", "t_x")
    assert bad_at.returncode == 2
    assert "--at: 'soon'" in bad_at.stderr
    assert run("schedules", "trigger", "s_nope").returncode == 3


def test_sharing_notices_and_a_template_from_a_batch(run: Cli, unique: str) -> None:
    with receiving() as receiver:
        created = run(
            "create", "-n", f"cli shared {unique}", "-t", "demo.sleep",
            "--item", '{"seconds": 0}', "--item", '{"seconds": 0}',
            "--visibility", "private", "--share", "cy",
            "--notify", receiver.url("cli"), "--notify-start", "--json",
        )  # fmt: skip
        batch_id = created_id(created)
        batch = json.loads(created.stdout)
        assert (batch["visibility"], batch["shared_with"]) == ("private", ["cy"])
        assert batch["config"]["notifications"][0]["on_start"] is True
        wait_status(run, batch_id, {"completed"})
        deadline = time.monotonic() + 30
        while True:
            listed = run("webhooks", batch_id, "--json")
            assert listed.returncode == 0, listed.stderr
            deliveries = json.loads(listed.stdout)
            events = sorted(d["event"] for d in deliveries if d["status"] == "delivered")
            if events == ["batch.finished", "batch.started"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert events == ["batch.finished", "batch.started"]
        table = run("webhooks", batch_id)
        assert "delivered" in table.stdout
        assert "finished" in table.stdout
        assert receiver.hits["cli"] == 2

    opened = run("edit", batch_id, "--visibility", "tenant", "--json")
    assert opened.returncode == 0, opened.stderr
    assert json.loads(opened.stdout)["visibility"] == "tenant"
    saved = run("templates", "from-batch", batch_id, "-n", f"cli copy {unique}", "--json")
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["spec"]["items"] == [{"seconds": 0}, {"seconds": 0}]
    missing = run("templates", "from-batch", "b_missing", "-n", "x")
    assert missing.returncode == 3, missing.stderr
    no_traceback(missing)
