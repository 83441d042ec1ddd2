"""A TCP proxy on 127.0.0.1 for tests that put a bad network between a client and a server:
closed, it refuses and cuts connections; told to, it loses the answer to a request after the
server acted on it."""

from __future__ import annotations

import asyncio
import contextlib

from devstack.probes import free_port


class Proxy:
    """Forwards a local port to `target` (`host:port`) while open; closed, it refuses and
    cuts connections. After `lose_answer(prefix)`, the answer to the next request that starts
    with `prefix` is read from the target and thrown away, and its connection cut: the server
    acted, the client never hears (`lost` counts them)."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host or "127.0.0.1", int(port))
        self.port = free_port()
        self.lost = 0
        self._lose: bytes | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    def lose_answer(self, prefix: bytes) -> None:
        self._lose, self.lost = prefix, 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        losing = asyncio.Event()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if up and self._lose is not None and not self.lost:
                        # a request on a kept-alive connection starts a read too
                        if data.startswith(self._lose):
                            self.lost += 1
                            losing.set()  # before the request goes on: its answer comes after
                    elif not up and losing.is_set():
                        break  # the server answered: it acted; the client never knows
                    dst.write(data)
                    await dst.drain()
            dst.close()
            if losing.is_set():
                writer.close()
                up_writer.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
