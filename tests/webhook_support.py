"""A local webhook receiver for tests: it answers as planned per path and keeps every request."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Receiver(ThreadingHTTPServer):
    """`POST /hook/<name>?fail=N&status=S`: answers S to the first N requests to <name>, then
    204; while `closed` is set, every request gets 503. Every request is kept (headers and
    raw body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: Counter[str] = Counter()
        self.received: list[tuple[str, dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, name: str, **query: Any) -> str:
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"http://127.0.0.1:{self.port}/hook/{name}" + (f"?{tail}" if tail else "")


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        name = parts.path.rsplit("/", 1)[-1]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.server.lock:
            self.server.hits[name] += 1
            failing = self.server.closed.is_set() or self.server.hits[name] <= int(
                query.get("fail", 0)
            )
            status = int(query.get("status", 503)) if failing else 204
            self.server.received.append((name, dict(self.headers.items()), body, status))
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A receiver serving on 127.0.0.1 in a thread, shut down on exit."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
