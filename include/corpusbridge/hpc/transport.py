"""The seam between corpusbridge and a cluster: run a program, move files, check hashes.

Commands are argument lists, never shell strings: an implementation quotes every element
(`shlex.join`) before anything reaches a remote shell, so `; rm -rf /` in a parameter stays a literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class RemoteStat:
    size: int
    mtime: float
    is_dir: bool


class TransportError(RuntimeError):
    """The transport itself failed (connection refused, timeout, auth): never a statement about a job."""


class TransportTimeout(TransportError):
    """A command did not finish within its timeout; it may still be running on the other side."""


@runtime_checkable
class Transport(Protocol):
    """What the SLURM layer needs from a connection to a cluster (or to this machine)."""

    name: str

    def run(
        self, argv: Sequence[str], *, timeout: float | None = None, stdin: bytes | None = None
    ) -> CommandResult:
        """Run one program with its arguments; raise TransportError only if the transport broke."""
        ...

    def put(self, local: Path, remote: str) -> None:
        """Copy a local file to a remote path (parent folders created)."""
        ...

    def get(self, remote: str, local: Path) -> None:
        """Copy a remote file to a local path (parent folders created)."""
        ...

    def stat(self, remote: str) -> RemoteStat | None:
        """Size/mtime of a remote path, or None when it does not exist."""
        ...

    def sha256(self, remote: str) -> str | None:
        """Hex sha256 of a remote file, computed on the remote side; None when it does not exist."""
        ...

    def makedirs(self, remote: str) -> None: ...

    def glob(self, pattern: str) -> list[str]:
        """Remote paths matching a glob (sorted); an empty list when none match."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class BulkUpload(Protocol):
    """Optional: many files in one stream (one round trip) instead of one command per file. Staging uses it when a
    transport offers it, and falls back to `put` per file otherwise."""

    def put_many(self, items: Sequence[tuple[Path, str]]) -> list[str]:
        """Upload (local, remote) pairs; return the sha256 of each remote file as read back on the remote side."""
        ...


@runtime_checkable
class BulkDownload(Protocol):
    """Optional: many remote files in one stream; fetch falls back to `get` per file without it."""

    def get_many(self, items: Sequence[tuple[str, Path]]) -> None:
        """Download (remote, local) pairs of regular files, each written under a temporary name then renamed."""
        ...


# A POSIX shell function `h FILE` printing FILE's sha256: openssl uses the CPU's SHA instructions (about 3x
# sha256sum here); sha256sum where openssl is missing. For transports and callers that run `sh` on the far side.
POSIX_SHA256_FUNCTION = (
    'h() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r < "$1"; '
    'else sha256sum < "$1"; fi | cut -c1-64; }'
)
