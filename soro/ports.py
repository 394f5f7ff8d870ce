"""Loopback ports for the processes Soro starts itself (a private Redis, vLLM) and for tests."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Where Linux takes the local ports of outgoing connections from, when it cannot be read.
_EPHEMERAL = (32768, 60999)
_LOWEST = 10_000
_TRIES = 200


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel gives outgoing connections their local port from (first and last)."""
    try:
        low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return _EPHEMERAL
    return low, high


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody uses right now, below the ephemeral range when there is room: a port the kernel picks
    from that range can go to some outgoing connection's end before the caller binds it ("address in use")."""
    low, _ = ephemeral_ports()
    for _ in range(_TRIES if low > _LOWEST else 0):
        port = random.randrange(_LOWEST, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        chosen: int = probe.getsockname()[1]
        return chosen
