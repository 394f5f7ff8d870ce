"""Loopback ports for the processes Soro starts itself (a private Redis, vLLM) and for tests."""

from __future__ import annotations

import itertools
import random
import socket
from pathlib import Path

# Above Ray's default worker ports (10002–19999), below where Linux takes the local ports of outgoing
# connections from (32768 on): a port picked in the kernel's own range can become some connection's local end
# before the caller binds it ("address already in use").
_LOW, _HIGH = 20_000, 32_768
# One walk through the range per process, from a random start: no port is handed out twice while others are
# still free, as random picks would (two picks of one stack got the same port).
_walk = itertools.count(random.randrange(_HIGH - _LOW))


def _kernel_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _HIGH


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody uses right now, from outside the ranges the kernel and Ray hand out themselves."""
    if _kernel_range_start() >= _HIGH:
        for _ in range(_HIGH - _LOW):
            port = _LOW + next(_walk) % (_HIGH - _LOW)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
            return port
    # The kernel's range reaches down here (or everything is taken): let it choose.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        chosen: int = probe.getsockname()[1]
        return chosen
