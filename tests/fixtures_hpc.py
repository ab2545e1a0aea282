"""Fixtures for the HPC tier: the loopback SLURM + sshd sandbox (scripts/hpc-sandbox.sh) and transports to it.

Registered from tests/conftest.py (`pytest_plugins`). The sandbox is one per machine (fixed port 2222): the
session fixture starts it when it is not running and leaves it running (`make sandbox-down` stops it), so that
several test sessions on one machine can share it. When it cannot start (not root, no apt), the tests that
need it skip with the script's message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from corpusbridge.hpc.cluster import ClusterSettings
    from corpusbridge.hpc.openssh import OpenSSHTransport

REPO_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_SCRIPT = REPO_ROOT / "scripts" / "hpc-sandbox.sh"


@dataclass(frozen=True)
class ClientKey:
    path: Path
    fingerprint: str


@dataclass(frozen=True)
class HpcSandbox:
    """Where the running sandbox is and how to log in to it."""

    root: Path
    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    host_key: str
    scratch_root: str
    slurm_conf: Path
    ssh_config: Path
    sshd_log: Path
    connection: dict[str, Any] = field(repr=False)

    def connection_json(self) -> str:
        """The Airflow connection, as `AIRFLOW_CONN_CORPUSBRIDGE_HPC` holds it."""
        return json.dumps(self.connection)

    def settings(self, **overrides: Any) -> ClusterSettings:
        from corpusbridge.hpc.cluster import ClusterSettings

        return ClusterSettings.from_mapping({**self.connection, **overrides})

    def add_client_key(self, folder: Path) -> ClientKey:
        """A new client key allowed to log in (via authorized_keys_tests), so that a test can count its own logins
        in the shared sshd log while other sessions use the sandbox too."""
        key = folder / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(key)], check=True)
        pub = key.with_suffix(".pub").read_text()
        with open(self.root / "ssh" / "authorized_keys_tests", "a", encoding="utf-8") as fh:
            fh.write(pub)
        out = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, check=True).stdout
        return ClientKey(path=key, fingerprint=out.split()[1])

    def count_logins(self, key: ClientKey) -> int:
        """Successful SSH authentications (TCP logins) made with `key` so far."""
        log = self.sshd_log.read_text(encoding="utf-8", errors="replace")
        return sum(1 for line in log.splitlines() if "Accepted publickey" in line and key.fingerprint in line)

    def ssh_argv(self, *remote: str) -> list[str]:
        """`ssh` through the sandbox's own client config (shares its ControlMaster)."""
        return ["ssh", "-F", str(self.ssh_config), "sandbox", *remote]


def sandbox_dir() -> Path:
    return Path(os.environ.get("HPC_SANDBOX_DIR", "/tmp/corpusbridge-sandbox"))


def start_sandbox() -> HpcSandbox:
    """Run `hpc-sandbox.sh up` (a no-op taking ~0.5 s when it already runs) and describe the result."""
    if shutil.which("flock") is None:
        raise RuntimeError("flock (util-linux) is missing")
    proc = subprocess.run(["bash", str(SANDBOX_SCRIPT), "up"], capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/hpc-sandbox.sh up failed (rc {proc.returncode}): {proc.stderr.strip()[-800:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("AIRFLOW_CONN_CORPUSBRIDGE_HPC="))
    conn = json.loads(line.split("=", 1)[1].strip("'"))
    return _describe(sandbox_dir(), conn)


def _describe(root: Path, conn: dict[str, Any]) -> HpcSandbox:
    extra = conn["extra"]
    return HpcSandbox(
        root=root,
        host=conn["host"],
        port=int(conn["port"]),
        user=conn["login"],
        key_file=Path(extra["key_file"]),
        known_hosts=Path(extra["known_hosts"]),
        host_key=extra["host_key"],
        scratch_root=extra["scratch_root"],
        slurm_conf=Path(extra["slurm_conf"]),
        ssh_config=root / "ssh" / "ssh_config",
        sshd_log=root / "log" / "sshd.log",
        connection=conn,
    )


@pytest.fixture(scope="session")
def hpc_sandbox() -> HpcSandbox:
    """The running loopback SLURM + sshd sandbox; the test skips (with the reason) when it cannot start."""
    try:
        sandbox = start_sandbox()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, StopIteration) as exc:
        pytest.skip(f"HPC sandbox unavailable: {exc}")
    # Local `sbatch`/`squeue` in tests (LocalTransport against the sandbox) need the config too.
    os.environ.setdefault("SLURM_CONF", str(sandbox.slurm_conf))
    return sandbox


@pytest.fixture(scope="session")
def openssh_transport(hpc_sandbox: HpcSandbox) -> Iterator[OpenSSHTransport]:
    """One OpenSSH transport (one ControlMaster) to the sandbox for the whole session."""
    from corpusbridge.hpc.openssh import OpenSSHTransport

    transport = OpenSSHTransport(hpc_sandbox.settings())
    yield transport
    transport.close()
