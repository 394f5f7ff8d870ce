"""A loopback TCP proxy that can be cut off and restored, and can shape the link (delay, bandwidth).

Tests put it between a client and a real server to make that server "go down" and "come back" without
restarting it, and benchmarks use it to imitate 3G and 2G links where ``tc netem`` is not available.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class LinkShape:
    delay_seconds: float = 0.0  # one way
    bytes_per_second: float | None = None


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, shape: LinkShape | None = None) -> None:
        self.target = (target_host, target_port)
        self.shape = shape or LinkShape()
        self.port = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (again, on the same port after ``stop``)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a crashed server would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer, up=True), self._pipe(upstream_reader, writer, up=False)
            )
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for w in (writer, upstream_writer):
                w.close()
            self._connections.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        # A limited link trickles: bytes leave in slices of 50 ms worth, not in whatever came in at once.
        rate = self.shape.bytes_per_second
        slice_size = max(1, int(rate / 20)) if rate else 65_536
        while data := await reader.read(16_384):
            if self.shape.delay_seconds:
                await asyncio.sleep(self.shape.delay_seconds)
            for start in range(0, len(data), slice_size):
                piece = data[start : start + slice_size]
                if rate:
                    await asyncio.sleep(len(piece) / rate)
                if up:
                    self.bytes_up += len(piece)
                else:
                    self.bytes_down += len(piece)
                writer.write(piece)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
