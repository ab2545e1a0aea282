"""The loopback sandbox is a real cluster that nothing outside this machine can reach."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

SANDBOX_PORTS = {2222: "sshd", 6817: "slurmctld", 6818: "slurmd"}


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses LISTENing on `port`, read from /proc (hex, as the kernel writes them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_sandbox_daemons_listen_on_loopback_only(hpc_sandbox) -> None:
    loopback_v4 = "0100007F"  # 127.0.0.1, little-endian hex
    for port, daemon in SANDBOX_PORTS.items():
        addresses = _listening_addresses(port)
        assert addresses, f"{daemon} is not listening on {port}"
        assert addresses == {loopback_v4}, f"{daemon} listens on {addresses}, not only 127.0.0.1"
