"""Ports for processes started on loopback: free, each handed out once, out of the kernel's and Ray's ranges."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from soro.ports import free_port

RAY_WORKER_PORTS = range(10_002, 20_000)


def test_free_ports_are_distinct_listenable_and_out_of_the_kernel_s_and_ray_s_ranges() -> None:
    low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    if low < 32_768:
        pytest.skip(f"this kernel gives outgoing connections ports from {low}: free_port lets the kernel choose")
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        assert port not in RAY_WORKER_PORTS
        assert not low <= port <= high
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[0]))
        server.listen()
