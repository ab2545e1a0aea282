"""The loopback sandbox is a real cluster that nothing outside this machine can reach."""

from __future__ import annotations

import pytest
from fixtures_hpc import listening_addresses

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

SANDBOX_PORTS = {2222: "sshd", 6817: "slurmctld", 6818: "slurmd"}


def test_sandbox_daemons_listen_on_loopback_only(hpc_sandbox) -> None:
    loopback_v4 = "0100007F"  # 127.0.0.1, little-endian hex
    for port, daemon in SANDBOX_PORTS.items():
        addresses = listening_addresses(port)
        assert addresses, f"{daemon} is not listening on {port}"
        assert addresses == {loopback_v4}, f"{daemon} listens on {addresses}, not only 127.0.0.1"
