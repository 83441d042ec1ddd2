"""The `batchyard` script over the batch lifecycle endpoints, against the real stack: chunked
uploads into drafts, submit, pause/resume/cancel, retry, rollback --dry-run (a plan, or the
reason there is none) and --watch (its progress to the end), duplicate, edit, archive,
delete, and the list filters."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from cli_support import Cli, cli_env, created_id, no_traceback, wait_status
from stack_support import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(stack: Stack, tmp_path: Path) -> Cli:
    return Cli(cli_env(stack, tmp_path))


def write_items(path: Path, count: int, bad_at: int | None = None) -> Path:
    lines = (json.dumps({"seconds": "soon" if i == bad_at else 0}) for i in range(count))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_upload_sends_a_file_in_chunks_into_a_new_batch_and_submits_it(
    run: Cli, tmp_path: Path
) -> None:
    items = write_items(tmp_path / "items.jsonl", 250)
    result = run(
        "upload", str(items), "-n", "cli-upload", "-t", "demo.sleep", "--chunk-size", "100",
        "--json",
    )  # fmt: skip
    batch_id = created_id(result)
    assert json.loads(result.stdout)["progress"]["total"] == 250
    assert wait_status(run, batch_id, {"completed"}, within_s=120)["progress"]["completed"] == 250


def test_a_draft_filled_by_two_uploads_then_submitted(run: Cli, tmp_path: Path) -> None:
    draft = run("create", "-n", "cli-draft", "-t", "demo.sleep", "--draft", "--json")
    batch_id = created_id(draft)
    assert json.loads(draft.stdout)["status"] == "draft"
    first = run("upload", "--batch", batch_id, str(write_items(tmp_path / "a.jsonl", 3)))
    assert first.returncode == 0, first.stderr
    assert f"Added 3 items to {batch_id}." in first.stdout
    second = run(
        "upload",
        "--batch",
        batch_id,
        "--submit",
        "--json",
        str(write_items(tmp_path / "b.jsonl", 2)),
    )
    assert second.returncode == 0, second.stderr
    # submitted: the answer is the batch as read then, which the scheduler may have started
    assert json.loads(second.stdout)["status"] in {"queued", "running", "completed"}
    assert wait_status(run, batch_id, {"completed"})["progress"]["total"] == 5
    again = run("submit", batch_id)
    assert again.returncode == 5
    assert "Conflict (HTTP 409)" in again.stderr


def test_a_failing_chunk_stops_the_upload_and_says_what_arrived(run: Cli, tmp_path: Path) -> None:
    items = write_items(tmp_path / "items.jsonl", 250, bad_at=150)
    result = run(
        "upload", str(items), "-n", "cli-bad-upload", "-t", "demo.sleep", "--chunk-size", "100"
    )  # fmt: skip
    assert result.returncode == 5
    no_traceback(result)
    assert "Invalid items (HTTP 422)" in result.stderr
    assert "item 50, seconds: 'soon' is not of type 'number'" in result.stderr
    assert "upload stopped: 100 items of this upload reached b_" in result.stderr
    batch_id = result.stderr.split("reached ")[1].split(";")[0]
    held = json.loads(run("status", batch_id, "--json").stdout)
    assert held["status"] == "uploading"
    assert held["progress"]["total"] == 100


def test_an_upload_cut_short_is_finished_by_running_it_again_with_its_key(
    run: Cli, tmp_path: Path
) -> None:
    items = write_items(tmp_path / "items.jsonl", 250, bad_at=150)
    command = ("upload", str(items), "-n", "cli-resumed", "-t", "demo.sleep", "--chunk-size", "100")
    stopped = run(*command)
    assert stopped.returncode == 5
    hint = stopped.stderr.split("run the same command with --idempotency-key ")[1]
    key = hint.split()[0]
    batch_id = stopped.stderr.split("reached ")[1].split(";")[0]
    write_items(items, 250)  # the bad item mended in place
    finished = run(*command, "--idempotency-key", key, "--json")
    assert created_id(finished) == batch_id
    # the first chunk was answered from the first run, not added again
    assert json.loads(finished.stdout)["progress"]["total"] == 250
    again = run(*command, "--idempotency-key", key, "--json")
    assert created_id(again) == batch_id
    assert "made and submitted by an earlier run with this key" in again.stderr
    done = wait_status(run, batch_id, {"completed"}, within_s=120)
    assert done["progress"]["completed"] == 250
    other = run(
        "upload", str(items), "-n", "another name", "-t", "demo.sleep", "--idempotency-key", key
    )
    assert other.returncode == 5
    assert "Idempotency key reused (HTTP 409)" in other.stderr


def test_pause_resume_cancel_and_the_409s(run: Cli) -> None:
    created = run(
        "create", "-n", "cli-lifecycle", "-t", "demo.sleep", "--max-concurrent", "1",
        *[arg for _ in range(30) for arg in ("--item", '{"seconds": 0.5}')], "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    wait_status(run, batch_id, {"running"})
    paused = run("pause", batch_id)
    assert paused.returncode == 0, paused.stderr
    assert f"{batch_id}: pause accepted" in paused.stdout
    wait_status(run, batch_id, {"paused"})
    twice = run("pause", batch_id)
    assert twice.returncode == 5
    assert "Conflict (HTTP 409): cannot pause a batch that is paused" in twice.stderr
    resumed = run("resume", batch_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["action"] == "resume"
    cancelled = run("cancel", batch_id)
    assert cancelled.returncode == 0, cancelled.stderr
    watched = run("monitor", batch_id, "--json", "--interval", "0.5")
    assert watched.returncode == 1
    assert json.loads(watched.stdout.splitlines()[-1])["batches"] == {batch_id: "cancelled"}
    # Several ids: one unknown does not stop the others; the exit code is the worst.
    mixed = run("resume", batch_id, "b_doesnotexist")
    assert mixed.returncode == 5
    assert "cannot resume a batch that is cancelled" in mixed.stderr
    assert "no batch b_doesnotexist" in mixed.stderr


def test_retry_rollback_refused_duplicate_edit_archive_delete(run: Cli) -> None:
    created = run(
        "create", "-n", "cli-retry", "-t", "demo.sleep", "--max-attempts", "1",
        "--item", '{"seconds": 0}', "--item", '{"fail_first_attempts": 1}', "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    wait_status(run, batch_id, {"completed_with_errors"})
    retried = run("retry", batch_id, "--watch", "--json")
    assert retried.returncode == 0, retried.stderr + retried.stdout
    assert json.loads(retried.stdout.splitlines()[-1])["batches"] == {batch_id: "completed"}

    refused = run("rollback", batch_id, "--dry-run")  # demo.sleep cannot be rolled back
    assert refused.returncode == 5, refused.stderr + refused.stdout
    assert "job type demo.sleep cannot be rolled back" in refused.stderr
    no_traceback(refused)

    copy = run("duplicate", batch_id, "--json")
    copy_id = created_id(copy)
    assert copy_id != batch_id
    assert json.loads(copy.stdout)["progress"]["total"] == 2

    name = f"renamed-{uuid.uuid4().hex[:6]}"
    edited = run("edit", batch_id, "--name", name, "--tag", "x", "--priority", "high")
    assert edited.returncode == 0, edited.stderr
    shown = json.loads(run("status", batch_id, "--json").stdout)
    assert (shown["name"], shown["tags"], shown["priority"]) == (name, ["x"], "high")
    assert run("edit", batch_id).returncode == 2  # nothing to change

    assert run("archive", batch_id).returncode == 0
    deadline = time.monotonic() + 30
    while json.loads(run("status", batch_id, "--json").stdout)["status"] != "archived":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    deleted = run("delete", batch_id)
    assert deleted.returncode == 0, deleted.stderr
    assert run("status", batch_id).returncode == 3
    wait_status(run, copy_id, {"completed_with_errors", "completed"})


def test_list_filters(run: Cli) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    ids = [
        created_id(
            run("create", "-n", f"{tag}-{i}", "-t", "demo.sleep", "--tag", tag, "--item", "{}",
                "--priority", priority, "--json")
        )
        for i, priority in enumerate(("low", "critical"))
    ]  # fmt: skip
    by_tag = json.loads(run("list", "--tag", tag, "--json").stdout)["items"]
    assert [b["id"] for b in by_tag] == ids[::-1]  # newest first
    critical = json.loads(run("list", "--tag", tag, "--priority", "critical", "--json").stdout)
    assert [b["id"] for b in critical["items"]] == [ids[1]]
    named = json.loads(run("list", "-q", f"{tag}-0", "--json").stdout)["items"]
    assert [b["id"] for b in named] == [ids[0]]
    paged = json.loads(run("list", "--tag", tag, "--limit", "1", "--json").stdout)
    assert len(paged["items"]) == 1
    assert paged["next_cursor"]
    rest = run("list", "--tag", tag, "--cursor", paged["next_cursor"], "--json")
    assert [b["id"] for b in json.loads(rest.stdout)["items"]] == [ids[0]]
    assert run("list", "--priority", "urgent").returncode == 2


def test_rollback_dry_run_prints_the_plan_of_a_job_type_that_can_roll_back(
    run: Cli, stack: Stack
) -> None:
    imported = httpx.post(
        f"{stack.url}/v1/library/templates/import",
        json={"templates": [
            {"name": "Welcome", "category": "mail", "body": "Hello {{name}}."},
            {"name": "Receipt", "category": "mail", "body": "You paid {{amount}}."},
        ]},
        headers=stack.headers,
        timeout=30,
    )  # fmt: skip
    assert imported.status_code == 201, imported.text
    created = run(
        "create", "-n", "cli-rollback", "-t", "templates.consolidate",
        "--item", json.dumps({"template_ids": imported.json()["ids"]}), "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    wait_status(run, batch_id, {"completed"})
    deadline = time.monotonic() + 30
    while True:  # the plan reads the job views, which may trail the batch's view by a moment
        plan = run("rollback", batch_id, "--dry-run")
        assert plan.returncode == 0, plan.stderr
        if f"{batch_id}.0" in plan.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "rollback plan (dry run, nothing changed)" in plan.stdout
    assert f"{batch_id}.0" in plan.stdout
    # the rollback service checked the plan as the rollback would (exit 0: it would go ahead)
    assert "checked: the rollback would restore 1 job(s)" in plan.stdout
    shown = json.loads(run("status", batch_id, "--json").stdout)
    assert shown["status"] == "completed"
    # then the rollback itself, followed until it ends: its own progress, exit 0 once rolled back
    watched = run("rollback", batch_id, "--watch")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "rollback accepted; watching it" in watched.stdout
    assert f"{batch_id} 'cli-rollback' rolled_back 100.0% 1/1 jobs restored" in watched.stdout
    assert "1 batch finished: 1 rolled_back" in watched.stdout
    status = run("status", batch_id)
    assert "Rollback  rolled back: 1/1 jobs restored (100.0%) · ended" in status.stdout
    again = run("rollback", batch_id, "--watch")  # a rolled back batch: refused, nothing watched
    assert again.returncode == 5, again.stdout


def test_edit_raises_the_concurrency_of_a_running_batch(run: Cli) -> None:
    items = [json.dumps({"seconds": 0.5})] * 30
    created = run(
        "create", "-n", "cli-concurrency", "-t", "demo.sleep", "--max-concurrent", "1",
        *[arg for item in items for arg in ("--item", item)], "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    edited = run("edit", batch_id, "--max-concurrent", "6", "--json")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["config"]["max_concurrent_jobs"] == 6
    most = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        progress = json.loads(run("status", batch_id, "--json").stdout)["progress"]
        most = max(most, progress["running"] + progress["dispatched"])
        if most > 1 or progress["percent"] == 100:
            break
        time.sleep(0.3)
    assert most > 1  # one at a time before
    done = wait_status(run, batch_id, {"completed"}, within_s=60)
    assert done["config"]["max_concurrent_jobs"] == 6
    ended = run("edit", batch_id, "--max-concurrent", "2")
    assert ended.returncode == 5
    assert "the concurrency of a batch that ended is fixed" in ended.stderr
