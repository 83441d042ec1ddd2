"""`batchyard bulk ...`, `analytics`, `stats`, `audit` and `keys create --rate-limit` against
the real stack, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli, cli_env, created_id, no_traceback, wait_status
from stack_support import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(stack: Stack, tmp_path: Path) -> Cli:
    return Cli(cli_env(stack, tmp_path))


def make(run: Cli, name: str, tag: str, item: str = '{"seconds": 0}') -> str:
    return created_id(
        run("create", "-n", name, "-t", "demo.sleep", "--item", item, "--tag", tag, "--json")
    )


def test_bulk_by_filter_and_by_id_prints_each_result_and_fails_if_any_did(
    run: Cli, unique: str
) -> None:
    tag = f"bulk-{unique}"
    done = [make(run, f"{tag}-{i}", tag) for i in range(2)]
    busy = make(run, f"{tag}-busy", tag, '{"seconds": 30}')
    for batch_id in done:
        wait_status(run, batch_id, {"completed"})
    wait_status(run, busy, {"running"})

    unattended = run("bulk", "archive", "--tag", tag)
    assert unattended.returncode == 2
    assert "--yes" in unattended.stderr

    archived = run("bulk", "archive", "--tag", tag, "--yes")
    assert archived.returncode == 5  # the running batch cannot be archived
    no_traceback(archived)
    assert "archive: 3 matched, 2 succeeded, 1 failed" in archived.stdout
    busy_line = next(line for line in archived.stdout.splitlines() if busy in line)
    assert "refused" in busy_line
    assert "409" in busy_line
    assert "running" in busy_line

    cancelled = run("bulk", "cancel", "--id", busy, "--id", "b_nope", "--yes", "--json")
    assert cancelled.returncode == 3  # the unknown id is the worst refusal
    outcome = json.loads(cancelled.stdout)
    assert outcome["succeeded"] == 1
    by_id = {r["id"]: r for r in outcome["results"]}
    assert by_id["b_nope"]["status"] == 404
    assert by_id[busy]["ok"] is True
    wait_status(run, busy, {"cancelled"})

    deleted = run(
        "bulk", "delete", "--status", "archived,cancelled", "--tag", tag, "--yes", "--json"
    )
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert json.loads(deleted.stdout)["succeeded"] == 3
    assert run("status", busy).returncode == 3

    assert run("bulk", "pause").returncode == 2
    assert run("bulk", "pause", "--id", busy, "--tag", tag).returncode == 2
    assert run("bulk", "explode", "--id", busy).returncode == 2


def test_analytics_shows_percentiles_errors_and_a_sparkline(run: Cli, tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    lines = [json.dumps({"seconds": 0.02 * (i % 4)}) for i in range(20)]
    lines += [
        json.dumps({"fail_with": "permanent", "fail_first_attempts": 9, "error_class": "BadRow"})
    ] * 2
    items.write_text("\n".join(lines) + "\n")
    batch_id = created_id(
        run("create", "-n", "analysed", "-t", "demo.sleep", "--items", str(items), "--json")
    )
    wait_status(run, batch_id, {"completed_with_errors"})
    shown = run("analytics", batch_id)
    assert shown.returncode == 0, shown.stderr
    assert "p95" in shown.stdout
    assert "BadRow" in shown.stdout
    spark = next(line for line in shown.stdout.splitlines() if line.startswith("Throughput"))
    assert any(ch in spark for ch in "▁▂▃▄▅▆▇█")
    data = json.loads(run("analytics", batch_id, "--json").stdout)
    assert data["durations"]["count"] == 22
    assert data["errors"][0]["error_class"] == "BadRow"
    missing = run("analytics", "b_nope")
    assert missing.returncode == 3
    no_traceback(missing)


def test_stats_and_the_audit_log(run: Cli, stack: Stack, tmp_path: Path) -> None:
    batch_id = created_id(
        run("create", "-n", "counted", "-t", "demo.sleep", "--item", "{}", "--json")
    )
    wait_status(run, batch_id, {"completed"})
    stats = json.loads(run("stats", "--since", "1h", "--json").stdout)
    assert stats["batches"] >= 1
    assert stats["jobs_completed"] >= 1
    assert "demo.sleep" in stats["job_types"]
    table = run("stats", "--since", "1h")
    assert "Success rate" in table.stdout
    bad = run("stats", "--since", "last tuesday")
    assert bad.returncode == 2
    assert "--since" in bad.stderr

    run("pause", batch_id)  # refused (409): audited too
    audit = json.loads(run("audit", "--resource", batch_id, "--json").stdout)["items"]
    assert [a["action"] for a in audit] == ["batches.pause"]
    assert audit[0]["outcome"] == "refused"
    assert batch_id in run("audit", "--resource", batch_id).stdout

    # A viewer key (made here, with its own rate limit) may not read the audit log.
    made = run(
        "keys",
        "create",
        "auditor",
        "--role",
        "viewer",
        "--rate-limit",
        "5",
        "--burst",
        "10",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["rate_limit"] == {"per_s": 5.0, "burst": 10}
    as_viewer = Cli(cli_env(stack, tmp_path, BATCHYARD_API_KEY=key["key"]))
    refused = as_viewer("audit")
    assert refused.returncode == 4
    no_traceback(refused)
    assert as_viewer("stats").returncode == 0
    assert run("keys", "create", "x", "--burst", "3").returncode == 2
