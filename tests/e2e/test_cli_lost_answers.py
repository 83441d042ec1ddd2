"""The `batchyard` script through a connection that loses the API's answer after the API acted
on the request (a proxy or a network dropping it): the CLI asks again with the same
Idempotency-Key and makes one batch, not two. The proxy is a thread on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cli_support import Cli, cli_env, created_id, no_traceback
from stack_support import Stack

pytestmark = pytest.mark.e2e


class DroppingProxy:
    """Forwards connections to `upstream`; the answer to the first request that starts with
    `drop` is read from the API and thrown away, and its connection closed."""

    def __init__(self, upstream: tuple[str, int], drop: bytes) -> None:
        self.upstream = upstream
        self.drop = drop
        self.dropped = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.upstream)
            dropping = threading.Event()
            threading.Thread(
                target=self._up, args=(client, upstream, dropping), daemon=True
            ).start()
            threading.Thread(
                target=self._down, args=(upstream, client, dropping), daemon=True
            ).start()

    def _up(
        self, client: socket.socket, upstream: socket.socket, dropping: threading.Event
    ) -> None:
        while data := _recv(client):
            with self.lock:  # a request on a kept-alive connection starts a read too
                if data.startswith(self.drop) and not self.dropped:
                    self.dropped += 1
                    dropping.set()  # before the request goes on: its answer comes after
            upstream.sendall(data)
        _close(upstream)

    def _down(
        self, upstream: socket.socket, client: socket.socket, dropping: threading.Event
    ) -> None:
        while data := _recv(upstream):
            if dropping.is_set():  # the API answered: it made the batch; the client never knows
                break
            client.sendall(data)
        _close(client)
        _close(upstream)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxy(stack: Stack) -> Iterator[DroppingProxy]:
    parts = urlsplit(stack.url)
    dropping = DroppingProxy((parts.hostname or "127.0.0.1", parts.port or 80), b"POST /v1/")
    yield dropping
    dropping.close()


def named(stack: Stack, name: str) -> list[str]:
    listed = httpx.get(
        f"{stack.url}/v1/batches", params={"q": name}, headers=stack.headers, timeout=30
    ).json()
    return [b["id"] for b in listed["items"] if b["name"] == name]


def test_a_create_whose_answer_is_lost_makes_one_batch(
    stack: Stack, proxy: DroppingProxy, tmp_path: Path
) -> None:
    run = Cli(cli_env(stack, tmp_path, BATCHYARD_URL=f"http://127.0.0.1:{proxy.port}"))
    name = f"lost answer {uuid.uuid4().hex[:8]}"
    result = run("create", "-n", name, "-t", "demo.sleep", "--item", '{"seconds": 0}', "--json")
    no_traceback(result)
    assert proxy.dropped == 1  # the first answer never reached the CLI
    assert named(stack, name) == [created_id(result)]


def test_an_upload_whose_chunk_answer_is_lost_adds_the_chunk_once(
    stack: Stack, proxy: DroppingProxy, tmp_path: Path
) -> None:
    run = Cli(cli_env(stack, tmp_path, BATCHYARD_URL=f"http://127.0.0.1:{proxy.port}"))
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"seconds": 0}) + "\n" for _ in range(30)))
    batch_id = created_id(run("create", "-n", "chunks", "-t", "demo.sleep", "--draft", "--json"))
    proxy.dropped = 0  # the draft's answer was lost (and asked again); now a chunk's
    proxy.drop = f"POST /v1/batches/{batch_id}/items".encode()
    result = run("upload", "--batch", batch_id, "--chunk-size", "10", "--submit", str(items))
    assert result.returncode == 0, result.stderr
    assert proxy.dropped == 1
    assert f"Added 30 items to {batch_id}." in result.stdout
    total = httpx.get(f"{stack.url}/v1/batches/{batch_id}", headers=stack.headers, timeout=30)
    assert total.json()["progress"]["total"] == 30  # not 40
