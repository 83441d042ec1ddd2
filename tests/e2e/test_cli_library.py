"""`batchyard library ...` run as a user runs it, against the real stack: templates imported
from a file, listed and shown; a consolidation planned, then started with interactive
conflicts; the parked conflict listed and decided; the batch then completes and the library
shows the outcome. Bad input gets an exit code and a message."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from cli_support import Cli, cli_env, no_traceback, wait_status
from jobs_support import store
from stack_support import Stack
from tenancy import registered_key

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(stack: Stack, tmp_path: Path) -> Cli:
    return Cli(cli_env(stack, tmp_path))


def test_import_consolidate_and_decide_a_conflict(run: Cli, tmp_path: Path, unique: str) -> None:
    category = f"lib-{unique[:8]}"
    templates = [
        {"name": "Welcome", "category": category, "body": "Hello {{name}}, welcome aboard."},
        {"name": "Welcome copy", "category": category, "body": "hello {{who}},  welcome aboard."},
        {"name": "Refund", "category": category, "body": "We refund you within 14 days."},
        {"name": "refund", "category": category, "body": "Refunds take a month, sorry."},
    ]
    source = tmp_path / "library.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in templates))

    imported = run("library", "import", str(source), "--json")
    assert imported.returncode == 0, imported.stderr
    ids = json.loads(imported.stdout)["ids"]
    assert len(ids) == 4
    listed = run("library", "list", "--category", category)
    assert listed.returncode == 0, listed.stderr
    assert all(i in listed.stdout for i in ids)
    shown = run("library", "show", ids[0])
    assert "Hello {{name}}, welcome aboard." in shown.stdout

    planned = run("library", "consolidate", "--category", category, "--plan")
    assert planned.returncode == 0, planned.stderr
    assert "4 template(s), 1 duplicate(s), 1 conflict(s)" in planned.stdout
    consolidate = (
        "library", "consolidate", "--category", category, "--conflicts", "interactive",
        "--stop-on-error", "--idempotency-key", f"tidy-{unique}",
    )  # fmt: skip
    started = run(*consolidate, "--json")
    assert started.returncode == 0, started.stderr
    batch_id = json.loads(started.stdout)["batch_id"]
    repeated = run(*consolidate)  # a second run of the command makes no second batch
    assert repeated.returncode == 0, repeated.stderr
    assert f"Consolidating in batch {batch_id} (made by an earlier run" in repeated.stdout
    assert json.loads(run("status", batch_id, "--json").stdout)["config"]["stop_on_error"]
    wait_status(run, batch_id, {"failed", "completed_with_errors"})  # its conflict is parked

    waiting = run("library", "conflicts", batch_id, "--waiting", "--json")
    assert waiting.returncode == 0, waiting.stderr
    (conflict,) = json.loads(waiting.stdout)
    assert sorted(conflict["template_ids"]) == sorted(ids[2:])
    table = run("library", "conflicts", batch_id)
    assert "awaiting a decision" in table.stdout
    decided = run("library", "decide", conflict["id"], "--keep", ids[3])
    assert decided.returncode == 0, decided.stderr
    assert f"{ids[3]} keeps the name" in decided.stdout
    wait_status(run, batch_id, {"completed"})

    after = json.loads(run("library", "list", "--category", category, "--json").stdout)
    status = {t["id"]: t["status"] for t in after["items"]}
    assert (status[ids[2]], status[ids[3]]) == ("archived", "active")
    assert sorted(status[i] for i in ids[:2]) == ["active", "merged"]
    merged = run("library", "list", "--category", category, "--status", "merged")
    assert "merged into" in merged.stdout


def test_bad_library_input_is_an_exit_code_and_a_message(run: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run("library", "import", str(empty))
    assert result.returncode == 2, result.stdout
    assert "no templates in it" in result.stderr
    no_traceback(result)
    nowhere = run("library", "consolidate")
    assert nowhere.returncode == 2
    assert "say which templates" in nowhere.stderr
    both = run("library", "consolidate", "--all", "--category", "x", "--plan")
    assert both.returncode == 2
    assert "--all takes every template" in both.stderr
    whole = run("library", "consolidate", "--all", "--plan", "--json")
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["templates"] >= 0
    invalid = tmp_path / "bad.jsonl"
    invalid.write_text(json.dumps({"name": "no body", "category": "x"}) + "\n")
    refused = run("library", "import", str(invalid))
    assert refused.returncode == 5, refused.stderr  # the API's 422, nothing imported
    assert "body" in refused.stderr
    missing = run("library", "decide", "c_nope", "--keep", "t_nope")
    assert missing.returncode == 3


def test_a_template_written_outside_the_api_is_flagged_and_refused(
    stack: Stack, tmp_path: Path, unique: str
) -> None:
    tenant = f"cli-lib-{unique[:8]}"
    planted = {"_id": f"t_cli{unique[:12]}", "tenant": tenant, "name": "Legacy", "text": "Hi"}

    async def prepare() -> str:
        async with store(stack.mongodb_url, stack.database) as db:
            await db["library_templates"].insert_one(planted)
        return await registered_key(stack, tenant=tenant, user="cleo", role="admin")

    run = Cli(cli_env(stack, tmp_path, BATCHYARD_API_KEY=asyncio.run(prepare())))
    listed = run("library", "list")
    assert listed.returncode == 0, listed.stderr
    assert "not a whole template" in listed.stdout
    shown = run("library", "show", planted["_id"])
    assert shown.returncode == 0, shown.stderr
    assert "Defects" in shown.stdout
    assert "no body" in shown.stdout
    refused = run("library", "consolidate", "--all", "--plan")
    assert refused.returncode == 5, refused.stdout  # the API's 422
    assert planted["_id"] in refused.stderr
    assert "no body" in refused.stderr
    no_traceback(refused)
    # mended from the command line: it gets its text (and the dates it lacked)
    text = tmp_path / "legacy.txt"
    text.write_text("Hi {{name}}, from the old system.")
    mended = run("library", "update", planted["_id"], "--body-file", str(text), "--json")
    assert mended.returncode == 0, mended.stderr
    assert json.loads(mended.stdout)["defects"] == []
    planned = run("library", "consolidate", "--all", "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["templates"] == 1


def test_change_archive_and_delete_a_library_template(
    run: Cli, tmp_path: Path, unique: str
) -> None:
    category = f"chg-{unique[:8]}"
    source = tmp_path / "two.jsonl"
    source.write_text(
        "".join(
            json.dumps({"name": n, "category": category, "body": f"{n} {{{{who}}}}"}) + "\n"
            for n in ("Keep", "Drop")
        )
    )
    keep, drop = json.loads(run("library", "import", str(source), "--json").stdout)["ids"]
    changed = run(
        "library", "update", keep, "--name", "Kept", "--body", "Hello {{who}}",
        "--variable", "who", "--tag", "a", "--tag", "b",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert f"Updated library template {keep}" in changed.stdout
    assert "Hello {{who}}" in changed.stdout
    shown = json.loads(run("library", "show", keep, "--json").stdout)
    assert (shown["name"], shown["tags"], shown["version"]) == ("Kept", ["a", "b"], 2)
    untagged = json.loads(run("library", "update", keep, "--no-tags", "--json").stdout)
    assert (untagged["tags"], untagged["name"]) == ([], "Kept")

    archived = run("library", "update", drop, "--status", "archived", "--json")
    assert json.loads(archived.stdout)["status"] == "archived"
    active = json.loads(
        run("library", "list", "--category", category, "--status", "active", "--json").stdout
    )
    assert [t["id"] for t in active["items"]] == [keep]
    deleted = run("library", "delete", drop)
    assert deleted.returncode == 0, deleted.stderr
    gone = run("library", "show", drop)
    assert gone.returncode == 3, gone.stdout
    again = run("library", "delete", drop)
    assert again.returncode == 3
    no_traceback(again)

    nothing = run("library", "update", keep)
    assert nothing.returncode == 2
    assert "nothing to change" in nothing.stderr
    both = run("library", "update", keep, "--body", "x", "--body-file", str(source))
    assert both.returncode == 2
    assert "not both" in both.stderr
    merged = run("library", "update", keep, "--status", "merged")
    assert merged.returncode == 2  # a consolidation merges; a person archives
    empty = run("library", "update", keep, "--name", "")
    assert empty.returncode == 5, empty.stdout  # the API's 422
    assert "name" in empty.stderr
    no_traceback(empty)
    assert json.loads(run("library", "show", keep, "--json").stdout)["name"] == "Kept"
