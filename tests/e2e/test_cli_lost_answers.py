"""The `batchyard` script through a connection that loses the API's answer after the API acted
on the request (a proxy or a network dropping it): the CLI asks again with the same
Idempotency-Key and makes one batch, not two (`tcp_proxy.Proxy`, on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cli_support import Cli, cli_env, created_id, no_traceback
from stack_support import Stack
from tcp_proxy import Proxy

pytestmark = pytest.mark.e2e


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[Proxy]:
    parts = urlsplit(stack.url)
    between = Proxy(f"{parts.hostname or '127.0.0.1'}:{parts.port or 80}")
    await between.open()
    yield between
    await between.close()


async def named(api: httpx.AsyncClient, name: str) -> list[str]:
    listed = (await api.get("/v1/batches", params={"q": name})).json()
    return [b["id"] for b in listed["items"] if b["name"] == name]


async def test_a_create_whose_answer_is_lost_makes_one_batch(
    api: httpx.AsyncClient, stack: Stack, proxy: Proxy, tmp_path: Path
) -> None:
    run = Cli(cli_env(stack, tmp_path, BATCHYARD_URL=f"http://127.0.0.1:{proxy.port}"))
    name = f"lost answer {uuid.uuid4().hex[:8]}"
    proxy.lose_answer(b"POST /v1/batches")
    result = await asyncio.to_thread(
        run, "create", "-n", name, "-t", "demo.sleep", "--item", '{"seconds": 0}', "--json"
    )
    no_traceback(result)
    assert proxy.lost == 1  # the first answer never reached the CLI
    assert await named(api, name) == [created_id(result)]


async def test_an_upload_whose_chunk_answer_is_lost_adds_the_chunk_once(
    api: httpx.AsyncClient, stack: Stack, proxy: Proxy, tmp_path: Path
) -> None:
    run = Cli(cli_env(stack, tmp_path, BATCHYARD_URL=f"http://127.0.0.1:{proxy.port}"))
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"seconds": 0}) + "\n" for _ in range(30)))
    draft = await asyncio.to_thread(
        run, "create", "-n", "chunks", "-t", "demo.sleep", "--draft", "--json"
    )
    batch_id = created_id(draft)
    proxy.lose_answer(f"POST /v1/batches/{batch_id}/items".encode())
    result = await asyncio.to_thread(
        run, "upload", "--batch", batch_id, "--chunk-size", "10", "--submit", str(items)
    )
    assert result.returncode == 0, result.stderr
    assert proxy.lost == 1
    assert f"Added 30 items to {batch_id}." in result.stdout
    batch = (await api.get(f"/v1/batches/{batch_id}")).json()
    assert batch["progress"]["total"] == 30  # not 40
