"""`batchyard retention show|set|run` as an admin runs them, in a tenant of its own: a dry run
lists and changes nothing, a run archives; bad values and non-admin keys get clear errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from cli_support import Cli, cli_env, no_traceback
from jobs_support import wait_for_status
from stack_support import Stack
from tenancy import registered_key

pytestmark = pytest.mark.e2e


async def test_retention_show_set_dry_run_and_run(stack: Stack, tmp_path: Path) -> None:
    tenant = f"cliret-{uuid.uuid4().hex[:8]}"
    key = await registered_key(stack, tenant=tenant, user="carl", role="admin")
    run = Cli(cli_env(stack, tmp_path, BATCHYARD_API_KEY=key))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=30) as api:
        created = await api.post(
            "/v1/batches",
            json={"name": "old", "job_type": "demo.sleep", "items": [{"seconds": 0}]},
        )
        assert created.status_code == 201, created.text
        batch_id = created.json()["id"]
        await wait_for_status(api, batch_id, {"completed"}, 60)

        shown = run("retention", "show", "--json")
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["revision"] == 0

        bad = run("retention", "set", "--archive-after", "soon")
        assert bad.returncode != 0
        assert "--archive-after" in bad.stderr
        no_traceback(bad)

        set_ = run("retention", "set", "--archive-after", "0.000001", "--json")
        assert set_.returncode == 0, set_.stderr
        policy = json.loads(set_.stdout)
        assert policy["archive_after_days"] == 0.000001
        assert policy["enabled"] is False
        await asyncio.sleep(0.2)

        dry = run("retention", "run", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        outcome = json.loads(dry.stdout)
        assert outcome["status"] == "completed"
        assert outcome["archived_ids"] == [batch_id]
        assert (await api.get(f"/v1/batches/{batch_id}")).json()["status"] == "completed"

        real = run("retention", "run")
        assert real.returncode == 0, real.stderr
        assert "archived 1" in real.stdout
        assert batch_id in real.stdout
        await wait_for_status(api, batch_id, {"archived"}, 30)

    viewer = await registered_key(stack, tenant=tenant, user="vic", role="viewer")
    refused = run("retention", "show", env=cli_env(stack, tmp_path, BATCHYARD_API_KEY=viewer))
    assert refused.returncode != 0
    assert "admin" in refused.stderr
    no_traceback(refused)
