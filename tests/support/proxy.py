"""A loopback TCP proxy that can be cut off and restored, and can shape the link (delay, bandwidth, loss).

Tests put it between a client and a real server to make that server "go down" and "come back" without
restarting it, and benchmarks use it to imitate 3G and 2G links where ``tc netem`` is not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass

SEGMENT_BYTES = 1448  # a TCP segment's payload on an Ethernet-sized path: the unit that gets lost


@dataclass
class LinkShape:
    delay_seconds: float = 0.0  # one way
    bytes_per_second: float | None = None  # each direction of each connection
    loss: float = 0.0  # share of TCP segments lost once and sent again
    # How much later a lost segment lands: TCP notices a lost tail after about two round trips (its tail-loss
    # probe), never sooner than its 200 ms minimum retransmission timeout. None: that estimate.
    retransmit_seconds: float | None = None
    seed: int | None = None  # for the same losses on every run

    @property
    def retransmit_delay(self) -> float:
        if self.retransmit_seconds is not None:
            return self.retransmit_seconds
        return max(0.2, 4 * self.delay_seconds)


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, shape: LinkShape | None = None) -> None:
        self.target = (target_host, target_port)
        self.shape = shape or LinkShape()
        self.port = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._random = random.Random(self.shape.seed)

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
        # Bytes cross the link in order. A slice leaves once the link has sent what came before it (bandwidth)
        # and lands ``delay_seconds`` later, or a retransmission later if lost; what follows a lost slice waits
        # for it, as TCP delivers in order. Slices in flight do not wait for each other's delay. A limited link
        # trickles: bytes leave in slices of 50 ms worth, not in whatever came in at once.
        loop = asyncio.get_running_loop()
        rate = self.shape.bytes_per_second
        slice_size = max(1, int(rate / 20)) if rate else 65_536
        in_flight: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        landing = asyncio.create_task(self._land(in_flight, writer, up))
        link_free_at = landed_at = 0.0
        try:
            while data := await reader.read(16_384):
                for start in range(0, len(data), slice_size):
                    piece = data[start : start + slice_size]
                    link_free_at = max(link_free_at, loop.time()) + (len(piece) / rate if rate else 0.0)
                    arrival = link_free_at + self.shape.delay_seconds
                    if self._lost(len(piece)):
                        arrival += self.shape.retransmit_delay
                    landed_at = max(landed_at, arrival)
                    in_flight.put_nowait((landed_at, piece))
            in_flight.put_nowait(None)
            await landing
        finally:
            if not landing.done():
                landing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await landing

    def _lost(self, size: int) -> bool:
        if not self.shape.loss:
            return False
        # Slices are smaller than segments: a slice of half a segment is lost half as often as a whole one.
        kept: float = (1 - self.shape.loss) ** (size / SEGMENT_BYTES)
        return self._random.random() >= kept

    async def _land(
        self, in_flight: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter, up: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        while (item := await in_flight.get()) is not None:
            landed_at, piece = item
            await asyncio.sleep(max(0.0, landed_at - loop.time()))
            if up:
                self.bytes_up += len(piece)
            else:
                self.bytes_down += len(piece)
            writer.write(piece)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
