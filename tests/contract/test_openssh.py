"""What only the OpenSSH transport promises: host keys are verified (never learned), a broken connection is a
TransportError and never a command result, and every command rides one shared, authenticated connection."""

from __future__ import annotations

import copy
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corpusbridge.hpc.cluster import ClusterSettings
from corpusbridge.hpc.openssh import OpenSSHTransport, shell_glob_word
from corpusbridge.hpc.transport import TransportError

pytestmark = [pytest.mark.integration, pytest.mark.slurm]


@pytest.fixture
def control_dir() -> Iterator[Path]:
    """A private ControlPath folder, so the test cannot ride the session's already-verified master; short, as a
    socket path must stay under ~104 bytes."""
    path = Path(tempfile.mkdtemp(prefix="cbssh-", dir="/tmp"))
    yield path
    for sock in path.iterdir():
        if sock.is_socket():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def _settings(sandbox: Any, port: int | None = None, **extra: Any) -> ClusterSettings:
    conn = copy.deepcopy(sandbox.connection)
    conn["extra"].update(extra)
    conn["extra"] = {k: v for k, v in conn["extra"].items() if v is not None}
    if port is not None:
        conn["port"] = port
    return ClusterSettings.from_mapping(conn)


def _other_host_key(folder: Path) -> str:
    key = folder / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def test_unknown_host_key_is_rejected(hpc_sandbox: Any, control_dir: Path, tmp_path: Path) -> None:
    settings = _settings(hpc_sandbox, host_key=_other_host_key(tmp_path), known_hosts=None)
    with pytest.raises(TransportError, match="Host key verification failed"):
        OpenSSHTransport(settings, control_dir=control_dir).run(["true"])


def test_no_trust_on_first_use(hpc_sandbox: Any, control_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    settings = _settings(hpc_sandbox, host_key=None, known_hosts=str(empty))
    with pytest.raises(TransportError, match="Host key verification failed"):
        OpenSSHTransport(settings, control_dir=control_dir).run(["true"])
    assert empty.read_text() == ""


def test_connection_refused_is_a_transport_error(hpc_sandbox: Any, control_dir: Path) -> None:
    transport = OpenSSHTransport(_settings(hpc_sandbox, port=1), control_dir=control_dir)
    with pytest.raises(TransportError, match="Connection refused"):
        transport.run(["true"])
    with pytest.raises(TransportError):
        transport.sha256("/etc/hostname")


def test_wrong_client_key_is_a_transport_error(hpc_sandbox: Any, control_dir: Path, tmp_path: Path) -> None:
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    transport = OpenSSHTransport(_settings(hpc_sandbox, key_file=str(key)), control_dir=control_dir)
    with pytest.raises(TransportError, match="Permission denied"):
        transport.run(["true"])


def test_remote_exit_255_is_a_result(openssh_transport: OpenSSHTransport) -> None:
    assert openssh_transport.run(["sh", "-c", "exit 255"]).returncode == 255


def test_slurm_commands_find_their_config(openssh_transport: OpenSSHTransport) -> None:
    result = openssh_transport.run(["sinfo", "-h", "-o", "%P"])
    assert result.ok and result.stdout.strip() == "debug*"


def test_all_commands_share_one_login(hpc_sandbox: Any, control_dir: Path, tmp_path: Path) -> None:
    key = hpc_sandbox.add_client_key(tmp_path)
    settings = _settings(hpc_sandbox, key_file=str(key.path))
    first, second = (OpenSSHTransport(settings, control_dir=control_dir) for _ in range(2))
    (tmp_path / "f").write_bytes(b"data")
    scratch = f"{hpc_sandbox.scratch_root}/logins-{tmp_path.name}"
    for i in range(20):
        (first if i % 2 else second).run(["squeue", "-h"])
    first.put(tmp_path / "f", f"{scratch}/f")
    second.get(f"{scratch}/f", tmp_path / "g")
    assert first.sha256(f"{scratch}/f") and second.glob(f"{scratch}/*") == [f"{scratch}/f"]
    first.run(["rm", "-rf", scratch])
    assert hpc_sandbox.count_logins(key) == 1

    first.stop_master()
    assert second.run(["true"]).ok, "a lost master is replaced transparently"
    assert hpc_sandbox.count_logins(key) == 2


@pytest.mark.parametrize(
    ("pattern", "word"),
    [
        ("/s/*.parquet", "/s/*.parquet"),
        ("/s p/[ab]?.x", "'/s p/'[ab]?.x"),
        ("/s/a b;c*", "'/s/a b;c'*"),
        ("/s/[$(x)]", "'/s/[$(x)]'"),
        ("/s/`x`*", "'/s/`x`'*"),
    ],
)
def test_shell_glob_word_quotes_all_but_wildcards(pattern: str, word: str) -> None:
    assert shell_glob_word(pattern) == word


def test_what_lands_on_the_cluster_is_private_to_its_owner(openssh_transport: OpenSSHTransport, tmp_path: Path,
                                                           hpc_sandbox: Any) -> None:  # fmt: skip
    """Shards carry full text and scratch is often shared: uploads, folders and what commands write are 0600/0700."""
    local = tmp_path / "shard.parquet"
    local.write_bytes(b"text of the corpus")
    base = f"{hpc_sandbox.scratch_root}/private-{tmp_path.name}"
    openssh_transport.put(local, f"{base}/one/shard.parquet")
    openssh_transport.put_many([(local, f"{base}/many/shard.parquet")])
    openssh_transport.run(["sh", "-c", 'echo result > "$1"', "sh", f"{base}/one/result.json"])
    modes = openssh_transport.run(["sh", "-c", 'cd "$1" && stat -c "%n %a" one many one/* many/*', "sh", base])
    assert modes.ok, modes.stderr
    assert dict(line.rsplit(" ", 1) for line in modes.stdout.split("\n") if line) == {
        "one": "700", "many": "700", "one/shard.parquet": "600", "one/result.json": "600", "many/shard.parquet": "600",
    }  # fmt: skip
    openssh_transport.run(["rm", "-rf", "--", base])
