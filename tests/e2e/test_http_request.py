"""`http.request` against a local HTTP server whose answers are planned per path: retries
happen exactly as the batch's retry policy says, 4xx is not retried, timeouts and refused
connections are, and private targets that are not allow-listed are never called."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from jobs_support import wait_for_status
from readmodels import settled_job_views
from stack_support import Stack

pytestmark = pytest.mark.e2e

BODY = b"x" * 1234


class FlakyServer(ThreadingHTTPServer):
    """`/flaky/<key>?fail=N&status=S`: S for the first N requests of <key>, then 200.
    `/slow/<key>?s=T`: answers after T seconds. Every request is counted per key."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: Counter[str] = Counter()
        self.bodies: dict[str, Any] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FlakyServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        self._answer(json.loads(raw) if raw else None)

    def _answer(self, body: Any = None) -> None:
        parts = urlsplit(self.path)
        kind, key = parts.path.strip("/").split("/", 1)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.server.lock:
            self.server.hits[key] += 1
            n = self.server.hits[key]
            if body is not None:
                self.server.bodies[key] = body
        if kind == "slow":
            time.sleep(float(query.get("s", "1")))
        status = 200
        if kind == "flaky" and n <= int(query.get("fail", "0")):
            status = int(query.get("status", "503"))
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    srv = FlakyServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


async def test_retries_follow_the_policy_exactly(
    api: httpx.AsyncClient, stack: Stack, server: FlakyServer, free_port: Any
) -> None:
    closed_port = free_port()
    u = server.url
    items = [
        {"url": f"{u}/flaky/twice?fail=2"},  # 0: 503, 503, 200 → completed on attempt 3
        {"url": f"{u}/flaky/always?fail=99"},  # 1: 503 x3 → failed, retryable, 3 calls
        {"url": f"{u}/flaky/missing?fail=99&status=404"},  # 2: 404 → failed at once
        {"url": f"{u}/slow/late?s=3", "timeout_s": 0.3},  # 3: timeout x3
        {"url": f"http://127.0.0.1:{closed_port}/x"},  # 4: connection refused x3
        {"url": "http://10.255.255.1/metadata"},  # 5: not allow-listed: never called
        {"method": "POST", "url": f"{u}/flaky/post?fail=1&status=500", "body": {"a": [1, 2]}},
        {"url": f"{u}/flaky/teapot?fail=9&status=418", "expected_status": [418]},  # 7: expected
    ]
    response = await api.post(
        "/v1/batches",
        json={
            "name": "http",
            "job_type": "http.request",
            "items": items,
            "config": {"retry": {"max_attempts": 3, "backoff_initial_s": 0.1}, "timeout_s": 20},
        },
    )
    assert response.status_code == 201, response.text
    batch_id = response.json()["id"]
    done = await wait_for_status(api, batch_id, {"completed_with_errors"}, 120)
    assert done["progress"]["completed"] == 3
    assert done["progress"]["failed"] == 5
    views = await settled_job_views(
        stack.mongodb_url,
        stack.database,
        batch_id,
        lambda vs: len(vs) == 8 and all(v["status"] in ("completed", "failed") for v in vs),
    )
    job = {v["index"]: v for v in views}
    assert dict(server.hits) == {
        "twice": 3,
        "always": 3,
        "missing": 1,
        "late": 3,
        "post": 2,
        "teapot": 1,
    }
    assert job[0]["status"] == "completed"
    assert job[0]["attempt"] == 3
    assert job[0]["output"]["status"] == 200
    assert job[0]["output"]["size_bytes"] == len(BODY)
    assert job[0]["output"]["elapsed_ms"] > 0
    assert (job[1]["status"], job[1]["error_class"], job[1]["attempt"]) == ("failed", "Http503", 3)
    assert (job[2]["error_class"], job[2]["retryable"], job[2]["attempt"]) == ("Http404", False, 1)
    assert (job[3]["error_class"], job[3]["attempt"]) == ("HttpTimeout", 3)
    assert (job[4]["error_class"], job[4]["attempt"]) == ("HttpConnectionError", 3)
    assert (job[5]["error_class"], job[5]["attempt"]) == ("TargetNotAllowed", 1)
    assert "10.255.255.1" in job[5]["error_message"]
    assert job[6]["status"] == "completed"
    assert server.bodies["post"] == {"a": [1, 2]}
    assert job[7]["output"]["status"] == 418
