"""Network probes used for readiness and health (loopback only, short timeouts).

Contract: every function returns quickly (bounded by ``timeout``) and never
raises for connection problems; they report them as False/None instead.
HTTP probes bypass any ``*_PROXY`` environment variables.
"""

from __future__ import annotations

import contextlib
import random
import socket
import urllib.error
import urllib.request

LOOPBACK = "127.0.0.1"

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def tcp_open(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """True if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """True if we could bind ``host:port`` right now (nobody listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK, low: int = 20000, high: int = 32000) -> int:
    """A port that was free a moment ago, chosen below the kernel's ephemeral range
    (32768 and up here), so an outgoing connection cannot take it before a service binds it."""
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {low} and {high}")


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of a GET to ``url``, or None if nothing answered."""
    request = urllib.request.Request(url, method="GET")
    try:
        with _NO_PROXY_OPENER.open(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        code: int = exc.code
        with contextlib.suppress(Exception):
            exc.close()
        return code
    except (OSError, ValueError):
        return None
