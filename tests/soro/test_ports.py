"""Ports for processes started on loopback: free, and out of reach of the kernel's choice for outgoing ends."""

from __future__ import annotations

import socket

from soro.ports import ephemeral_ports, free_port


def test_a_free_port_can_be_listened_on_and_no_outgoing_connection_is_given_it() -> None:
    low, high = ephemeral_ports()
    ports = {free_port() for _ in range(50)}
    assert len(ports) > 40  # chosen at random, not the same few
    for port in ports:
        assert not low <= port <= high
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports.pop()))
        server.listen()
