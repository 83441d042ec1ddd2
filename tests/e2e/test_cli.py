"""The installed `batchyard` script against the real stack, run as a user runs it: a
subprocess with BATCHYARD_URL / BATCHYARD_API_KEY (or flags, or a config file), and
`monitor` under a pseudo-terminal."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_support import ANSI, Cli, cli_env, created_id, no_traceback, run_under_pty, wait_status
from stack_support import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(stack: Stack, tmp_path: Path) -> Cli:
    return Cli(cli_env(stack, tmp_path))


def test_help_lists_the_commands_and_documents_the_exit_codes(run: Cli) -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("create", "upload", "status", "list", "monitor", "cancel", "report", "keys"):
        assert command in result.stdout
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "Exit codes: 0 ok" in text
    assert "3 not found" in text
    assert "4 unauthorized or forbidden" in text


def test_create_then_status_and_list_show_it(run: Cli) -> None:
    created = run(
        "create", "--name", "cli-hello", "--job-type", "demo.sleep",
        "--item", '{"seconds": 0}', "--item", '{"seconds": 0.1}', "--max-concurrent", "2",
        "--tag", "cli", "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    body = json.loads(created.stdout)
    assert body["progress"]["total"] == 2
    assert body["config"]["max_concurrent_jobs"] == 2
    done = wait_status(run, batch_id, {"completed"})
    assert done["progress"]["completed"] == 2

    human = run("status", batch_id)
    assert human.returncode == 0
    assert "completed" in human.stdout
    assert "100.0%" in human.stdout
    assert "2/2 done" in human.stdout

    listed = run("list", "--status", "completed", "--limit", "500", "--json")
    assert listed.returncode == 0, listed.stderr
    assert batch_id in [b["id"] for b in json.loads(listed.stdout)["items"]]
    table = run("list", "--limit", "5")
    assert batch_id in table.stdout
    assert "cli-hello" in table.stdout


def test_create_with_a_deadline_a_span_ahead(run: Cli) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    created = run(
        "create", "--name", "cli-deadline", "--job-type", "demo.sleep", "--item", "{}",
        "--deadline", "2h", "--on-deadline-missed", "cancel", "--json",
    )  # fmt: skip
    created_id(created)
    body = json.loads(created.stdout)
    deadline = datetime.fromisoformat(body["deadline"])
    assert timedelta(hours=2) <= deadline - before < timedelta(hours=2, minutes=1)
    assert body["config"]["on_deadline_missed"] == "cancel"
    refused = run(
        "create", "--name", "x", "--job-type", "demo.sleep", "--item", "{}", "--deadline", "soon"
    )
    assert refused.returncode == 2
    assert "--deadline: 'soon'" in refused.stderr


def test_create_from_a_yaml_spec_with_an_items_file(run: Cli, tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"seconds": 0.01 * i}) + "\n" for i in range(30)))
    spec = tmp_path / "batch.yaml"
    spec.write_text(
        "name: from-spec\njob_type: demo.sleep\npriority: high\n"
        "config:\n  max_concurrent_jobs: 5\n  retry:\n    max_attempts: 2\n"
    )
    created = run("create", "--spec", str(spec), "--items", str(items), "--json")
    batch_id = created_id(created)
    body = json.loads(created.stdout)
    assert body["name"] == "from-spec"
    assert body["priority"] == "high"
    assert body["progress"]["total"] == 30
    assert body["config"]["retry"]["max_attempts"] == 2
    assert wait_status(run, batch_id, {"completed"})["progress"]["completed"] == 30


def test_monitor_under_a_terminal_draws_live_bars_until_the_batch_completes(
    run: Cli, stack: Stack, tmp_path: Path
) -> None:
    created = run(
        "create", "--name", "cli-monitor", "--job-type", "demo.sleep",
        *[arg for _ in range(30) for arg in ("--item", '{"seconds": 0.5}')],
        "--max-concurrent", "1", "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    # 30 jobs of 0.5 s one at a time: at least 15 s, so the monitor (started after the
    # create returned, on a loaded machine) sees the batch part-way through.
    code, screen = run_under_pty(["monitor", batch_id], cli_env(stack, tmp_path), 90)

    plain = ANSI.sub("", screen)
    assert code == 0, plain
    assert "\x1b[" in screen  # drawn with terminal control sequences, not printed lines
    assert "cli-monitor" in plain
    assert "30/30" in plain
    assert "100.0%" in plain
    assert "completed" in plain
    assert "1 batch finished: 1 completed" in plain
    # The bars moved: the screen showed the batch part-way through, not only at the end.
    shares = {float(s) for s in re.findall(r"(\d+\.\d)%", plain)}
    assert any(0 < s < 100 for s in shares), plain
    assert "Traceback" not in plain


def test_monitor_exits_1_when_a_batch_completes_with_errors(run: Cli) -> None:
    created = run(
        "create", "--name", "cli-errors", "--job-type", "demo.sleep",
        "--item", '{"seconds": 0}', "--item", '{"fail_first_attempts": 5, "fail_with": "permanent"}',
        "--json",
    )  # fmt: skip
    batch_id = created_id(created)
    result = run("monitor", batch_id, "--json", "--interval", "0.5")
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["event"] == "snapshot"
    assert records[-1] == {
        "event": "summary",
        "batches": {batch_id: "completed_with_errors"},
        "exit_code": 1,
    }
    # Piped without --json: one plain line per status change, no control sequences.
    lines = run("monitor", batch_id)
    assert lines.returncode == 1
    assert "\x1b[" not in lines.stdout
    assert f"{batch_id} 'cli-errors' completed_with_errors 100.0% 2/2 done · 1 failed" in (
        lines.stdout
    )


def test_usage_errors_exit_2_with_a_message(run: Cli, tmp_path: Path) -> None:
    unknown = run("list", "--bogus")
    assert unknown.returncode == 2
    assert "No such option: --bogus" in unknown.stderr
    no_type = run("create", "--name", "x", "--item", "{}")
    assert no_type.returncode == 2
    assert "a batch needs job_type: give --job-type" in no_type.stderr
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text('{"seconds": 1}\n{"seconds": \n')
    broken = run("create", "-n", "x", "-t", "demo.sleep", "--items", str(bad_file))
    assert broken.returncode == 2
    assert f"{bad_file}:2: not valid JSON" in broken.stderr
    for result in (unknown, no_type, broken):
        no_traceback(result)


def test_unknown_batch_exits_3(run: Cli) -> None:
    result = run("status", "b_doesnotexist", "--json")
    assert result.returncode == 3
    assert result.stdout == ""
    assert "Error: Not found (HTTP 404): no batch b_doesnotexist" in result.stderr
    no_traceback(result)


def test_a_bad_key_exits_4_with_a_hint(run: Cli, stack: Stack, tmp_path: Path) -> None:
    result = run("list", env=cli_env(stack, tmp_path, BATCHYARD_API_KEY="bya_wrong"))
    assert result.returncode == 4
    assert "Error: Unauthorized (HTTP 401): the API key is unknown or revoked" in result.stderr
    assert "--api-key" in result.stderr
    no_traceback(result)


def test_invalid_items_print_the_problem_detail_and_exit_5(run: Cli) -> None:
    result = run(
        "create", "-n", "bad", "-t", "demo.sleep",
        "--item", '{"seconds": 0}', "--item", '{"seconds": "soon"}',
    )  # fmt: skip
    assert result.returncode == 5
    assert "Error: Invalid items (HTTP 422): 1 item(s) do not match the input schema" in (
        result.stderr
    )
    assert "  - item 1, seconds: 'soon' is not of type 'number'" in result.stderr
    no_traceback(result)
    unknown_type = run("create", "-n", "bad", "-t", "no.such.type", "--item", "{}")
    assert unknown_type.returncode == 5
    assert "Unknown job type (HTTP 422)" in unknown_type.stderr


def test_an_unreachable_server_exits_6(run: Cli, stack: Stack, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("--url", f"http://127.0.0.1:{port}", "list")
    assert result.returncode == 6
    assert f"cannot reach http://127.0.0.1:{port}" in result.stderr
    no_traceback(result)


def test_config_file_flags_and_environment_in_that_order(
    run: Cli, stack: Stack, tmp_path: Path
) -> None:
    config = tmp_path / "batchyard" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'url = "{stack.url}"\napi_key = "bya_wrong"\n'
        f'[profiles.good]\napi_key = "{stack.admin_key}"\n'
    )
    env = {
        k: v
        for k, v in cli_env(stack, tmp_path).items()
        if k not in ("BATCHYARD_URL", "BATCHYARD_API_KEY")
    }
    assert run("list", env=env).returncode == 4  # the file's top-level key
    assert run("--profile", "good", "list", "--json", env=env).returncode == 0
    assert run("list", env={**env, "BATCHYARD_API_KEY": stack.admin_key}).returncode == 0
    flag = run("--api-key", "bya_wrong", "--profile", "good", "list", env=env)
    assert flag.returncode == 4  # a flag beats the profile
    shown = run("--profile", "good", "config", "show", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    sources = json.loads(shown.stdout)["sources"]
    assert sources["url"] == f"file {config}"
    assert sources["api_key"] == f"file {config} [profiles.good]"
    assert stack.admin_key not in shown.stdout  # the key is masked
    missing = run("--profile", "nope", "list", env=env)
    assert missing.returncode == 2
    assert "profile 'nope' is not defined" in missing.stderr


def test_job_types_lists_what_executors_serve(run: Cli) -> None:
    listed = run("job-types", "--json")
    assert listed.returncode == 0
    names = [t["name"] for t in json.loads(listed.stdout)]
    assert "demo.sleep" in names
    schema = run("job-types", "demo.sleep")
    assert "seconds" in json.loads(schema.stdout)["properties"]
    assert run("job-types", "no.such").returncode == 2
