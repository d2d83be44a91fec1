"""Ports handed to the stacks' children are never from the kernel's ephemeral range: an
outgoing connection could take such a port between our check and the child's bind."""

from __future__ import annotations

from pathlib import Path

from devstack.processes import free_port


def test_free_ports_are_below_the_ephemeral_range_and_each_handed_out_once():
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first_ephemeral = int(ranges.read_text().split()[0]) if ranges.exists() else 49152
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(1024 < port < first_ephemeral for port in ports)
