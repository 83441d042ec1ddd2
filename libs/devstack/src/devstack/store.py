"""The MongoDB-compatible store: FerretDB v1 with its SQLite backend.

Contract:
- :func:`argv` is pure. FerretDB listens on ``127.0.0.1:<port>`` only, keeps
  one SQLite file per database under ``.batchyard/data/ferretdb/``, writes its
  ``state.json`` under ``.batchyard/data/ferretdb/state/`` (not the cwd), never
  phones home, and serves its debug/metrics HTTP on ``127.0.0.1:<debug_port>``
  (default 8089, outside the services' 8000-8020) or not at all (``-``).
- :func:`ping` sends a hand-encoded OP_MSG ``{ping: 1, $db: "admin"}`` and is
  True only for a reply with ``ok`` equal to 1; :func:`is_ready` is TCP + ping.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from devstack import probes, processes
from devstack.paths import Paths

NAME = "ferretdb"
DEFAULT_PORT = 27017
DEFAULT_DEBUG_PORT = 8089
PORT_ENV = "BATCHYARD_STORE_PORT"
DEBUG_PORT_ENV = "BATCHYARD_STORE_DEBUG_PORT"
DEFAULT_DATABASE = "batchyard"
OP_MSG = 2013
# SQLite settings for every database file. FerretDB already sets WAL; `synchronous(normal)`
# makes a commit skip its fsync (the WAL is synced at checkpoints): a commit survives a
# killed process, not a power cut, as a write a standalone MongoDB acknowledges by default
# does (w: 1; its journal is flushed every 100 ms). Under load: fsync calls 215 -> 13 in
# 4 s, and more jobs/s for less FerretDB CPU (docs/performance.md, session 11).
SQLITE_PRAGMAS = ("synchronous(normal)",)


@dataclass(frozen=True)
class StoreSettings:
    """Where FerretDB listens. ``debug_port`` None disables its debug HTTP server."""

    port: int = DEFAULT_PORT
    debug_port: int | None = DEFAULT_DEBUG_PORT
    host: str = probes.LOOPBACK

    def mongodb_url(self, database: str = DEFAULT_DATABASE) -> str:
        return f"mongodb://{self.host}:{self.port}/{database}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        """Read ``BATCHYARD_STORE_PORT`` and ``BATCHYARD_STORE_DEBUG_PORT`` (``-`` = off)."""
        env = os.environ if environ is None else environ
        raw_debug = env.get(DEBUG_PORT_ENV) or str(DEFAULT_DEBUG_PORT)
        debug = None if raw_debug in ("-", "0", "off") else int(raw_debug)
        return cls(port=int(env.get(PORT_ENV) or DEFAULT_PORT), debug_port=debug)


def argv(paths: Paths, settings: StoreSettings) -> list[str]:
    """FerretDB v1.24 command line (SQLite handler)."""
    data = paths.ferretdb_data.absolute()
    debug_addr = "-" if settings.debug_port is None else f"{settings.host}:{settings.debug_port}"
    return [
        str(paths.ferretdb_bin),
        "--handler=sqlite",
        f"--sqlite-url=file:{data}/?{'&'.join(f'_pragma={p}' for p in SQLITE_PRAGMAS)}",
        f"--listen-addr={settings.host}:{settings.port}",
        f"--state-dir={data / 'state'}",
        f"--debug-addr={debug_addr}",
        "--telemetry=disable",
        "--log-level=info",
        "--log-format=console",
    ]


def start(paths: Paths, settings: StoreSettings) -> processes.ProcessRecord:
    """Launch FerretDB as tracked process ``ferretdb`` (does not wait).

    If the debug port is taken by something else, the debug server is turned
    off rather than failing the start.
    """
    if not paths.ferretdb_bin.exists():
        raise FileNotFoundError(f"{paths.ferretdb_bin} missing: run `batchyard-dev install`")
    (paths.ferretdb_data / "state").mkdir(parents=True, exist_ok=True)
    if settings.debug_port is not None and not probes.port_free(settings.debug_port):
        settings = StoreSettings(port=settings.port, debug_port=None, host=settings.host)
    # FERRETDB_* variables from the caller would override nothing (flags win),
    # but drop them anyway so the log shows exactly what ran.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRETDB_")}
    return processes.start_process(
        NAME,
        argv(paths, settings),
        env,
        paths.log_file(NAME),
        run_dir=paths.run,
        cwd=paths.ferretdb_data,
        meta={"port": str(settings.port), "url": settings.mongodb_url()},
        inherit_env=False,
    )


# --------------------------------------------------------------------------
# Minimal OP_MSG ping (stdlib only)
# --------------------------------------------------------------------------


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def encode_ping(database: str = "admin") -> bytes:
    """BSON for ``{ping: 1, $db: <database>}``."""
    db = database.encode()
    body = (
        b"\x10" + _cstring("ping") + struct.pack("<i", 1)
        + b"\x02" + _cstring("$db") + struct.pack("<i", len(db) + 1) + db + b"\0"
    )  # fmt: skip
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def encode_op_msg(document: bytes, request_id: int = 1) -> bytes:
    """Wrap a BSON document in an OP_MSG with a single kind-0 section."""
    payload = struct.pack("<I", 0) + b"\x00" + document
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, OP_MSG) + payload


_FIXED_SIZES = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16}


def decode_top_level_numbers(document: bytes) -> dict[str, float]:
    """Numeric (double/int32/int64/bool) top-level fields of a BSON document.

    Other fields are skipped; decoding stops at an unknown type.
    """
    out: dict[str, float] = {}
    pos, end = 4, len(document) - 1
    while pos < end:
        kind = document[pos]
        name_end = document.index(b"\0", pos + 1)
        name = document[pos + 1 : name_end].decode("utf-8", "replace")
        pos = name_end + 1
        if kind == 0x01:
            out[name] = struct.unpack_from("<d", document, pos)[0]
        elif kind == 0x10:
            out[name] = float(struct.unpack_from("<i", document, pos)[0])
        elif kind == 0x12:
            out[name] = float(struct.unpack_from("<q", document, pos)[0])
        elif kind == 0x08:
            out[name] = float(document[pos])
        if kind in _FIXED_SIZES:
            pos += _FIXED_SIZES[kind]
        elif kind in (0x02, 0x0D, 0x0E):  # string, js code, symbol
            pos += 4 + struct.unpack_from("<i", document, pos)[0]
        elif kind in (0x03, 0x04):  # document, array
            pos += struct.unpack_from("<i", document, pos)[0]
        elif kind == 0x05:  # binary
            pos += 5 + struct.unpack_from("<i", document, pos)[0]
        else:
            break
    return out


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks += chunk
    return bytes(chunks)


def ping(port: int, host: str = probes.LOOPBACK, timeout: float = 2.0) -> bool:
    """True if a MongoDB-wire server at ``host:port`` answers ``ping`` with ok: 1."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(encode_op_msg(encode_ping()))
            header = _recv_exact(sock, 16)
            length, _req, _resp, opcode = struct.unpack("<iiii", header)
            if opcode != OP_MSG or not 21 <= length <= 16 * 1024 * 1024:
                return False
            body = _recv_exact(sock, length - 16)
    except (OSError, ValueError, struct.error):
        return False
    if body[4] != 0:  # first section must be kind 0 (the reply document)
        return False
    try:
        fields = decode_top_level_numbers(body[5:])
    except (ValueError, IndexError, struct.error):
        return False
    return fields.get("ok") == 1.0


def is_ready(record: processes.ProcessRecord, settings: StoreSettings) -> bool:
    """Process verified-alive, TCP accepts, and ``ping`` answers ok."""
    del record  # readiness is judged on the wire
    return ping(settings.port, settings.host)
