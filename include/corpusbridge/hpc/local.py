"""Transport to this machine: subprocesses and local files, for prototyping without a cluster (a local `sbatch`
or none) and as the reference the OpenSSH transport is held to by the shared contract tests."""

from __future__ import annotations

import glob as globbing
import os
import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from corpusbridge.hashing import file_sha256
from corpusbridge.hpc.transport import CommandResult, RemoteStat, TransportTimeout

_NOT_FOUND = 127  # what a remote shell answers for an unknown program; same here so callers see one behaviour
_NOT_EXECUTABLE = 126


class LocalTransport:
    """`Transport` on the local machine. Relative paths and commands start in `root` (as a login starts in the
    home directory), which is also where scratch dirs go by default."""

    name = "local"

    def __init__(self, root: Path | None = None, *, env: Mapping[str, str] | None = None) -> None:
        self.root = (root or Path.cwd()).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._env = {**os.environ, **(env or {})}

    def _path(self, remote: str) -> Path:
        path = Path(remote)
        return path if path.is_absolute() else self.root / path

    def run(self, argv: Sequence[str], *, timeout: float | None = None, stdin: bytes | None = None) -> CommandResult:
        if not argv:
            raise ValueError("run() needs a program to run (argv is empty)")
        args = tuple(argv)
        try:
            proc = subprocess.run(
                args,
                input=stdin or b"",
                capture_output=True,
                timeout=timeout,
                env=self._env,
                cwd=self.root,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TransportTimeout(f"local: no answer within {timeout} s: {args[0]}") from None
        except FileNotFoundError:
            return CommandResult(args, _NOT_FOUND, "", f"{args[0]}: command not found\n")
        except PermissionError:
            return CommandResult(args, _NOT_EXECUTABLE, "", f"{args[0]}: permission denied\n")
        return CommandResult(args, proc.returncode, _text(proc.stdout), _text(proc.stderr))

    def put(self, local: Path, remote: str) -> None:
        _copy(local, self._path(remote))

    def put_many(self, items: Sequence[tuple[Path, str]]) -> list[str]:
        """`BulkUpload`: copy each file, then hash the copy (what a remote side would report)."""
        hashes = []
        for local, remote in items:
            self.put(local, remote)
            hashes.append(self.sha256(remote) or "missing")
        return hashes

    def get(self, remote: str, local: Path) -> None:
        source = self._path(remote)
        if not source.is_file():
            raise FileNotFoundError(f"local:{remote}: no such file to download")
        _copy(source, local)

    def get_many(self, items: Sequence[tuple[str, Path]]) -> None:
        """`BulkDownload`: one copy per file (no round trips to save locally)."""
        for remote, local in items:
            self.get(remote, local)

    def stat(self, remote: str) -> RemoteStat | None:
        try:
            st = self._path(remote).stat()
        except FileNotFoundError:
            return None
        return RemoteStat(size=st.st_size, mtime=float(int(st.st_mtime)), is_dir=os.path.isdir(self._path(remote)))

    def sha256(self, remote: str) -> str | None:
        path = self._path(remote)
        if not path.is_file():
            return None
        return file_sha256(path)

    def makedirs(self, remote: str) -> None:
        self._path(remote).mkdir(parents=True, exist_ok=True)

    def glob(self, pattern: str) -> list[str]:
        """Matches in the form the pattern was given: relative patterns give paths relative to `root`, as a remote
        shell gives paths relative to the login directory."""
        if Path(pattern).is_absolute():
            return sorted(globbing.glob(pattern))
        return sorted(globbing.glob(pattern, root_dir=self.root))

    def close(self) -> None:
        """Nothing to release."""


def _copy(source: Path, target: Path) -> None:
    """Copy through a hidden temporary name, then rename: a crash never leaves a half file under the real name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".cb-part-{secrets.token_hex(6)}")
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")
