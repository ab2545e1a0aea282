"""Tar streams for bulk transfers: many files through one ssh command instead of one command per file.

Members are named 0..n-1 and matched to their targets by position, so file names (whatever characters they hold)
never pass through tar or a shell; the far side renames members onto targets given as quoted arguments.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tarfile
import threading
from pathlib import Path
from typing import IO

from corpusbridge.hpc.transport import TransportError


class TarWriter(threading.Thread):
    """Writes the files into a pipe as a tar stream with members named 0..n-1 (the remote side renames them).
    Headers come from `tarfile`; file data goes by `os.sendfile`, so no byte is copied through Python (which
    costs about a second per GiB and competes with ssh's encryption for the CPU)."""

    def __init__(self, fd: int, files: list[Path]) -> None:
        super().__init__(daemon=True)
        self.fd, self.files = fd, files
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for index, path in enumerate(self.files):
                self._member(str(index), path)
            _write_all(self.fd, b"\0" * 1024)  # end-of-archive marker
        except BaseException as exc:  # reported by put_many together with the remote side's message
            self.error = exc
        finally:
            os.close(self.fd)

    def _member(self, name: str, path: Path) -> None:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), 0o600  # root's tar keeps modes
            _write_all(self.fd, info.tobuf(format=tarfile.PAX_FORMAT))
            offset = 0
            while offset < st.st_size:  # a file that grows meanwhile is cut at the size in its header
                sent = os.sendfile(self.fd, fh.fileno(), offset, min(st.st_size - offset, 1 << 30))
                if sent == 0:
                    raise OSError(f"{path} shrank while it was being uploaded")
                offset += sent
            _write_all(self.fd, b"\0" * (-st.st_size % 512))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class StreamBroken(TransportError):
    """The download stream ended inside a member or a header: the connection dropped or the far side died. A
    TransportError, so callers retry it like any other dropped connection; files already written are intact."""


def untar_in_order(stream: IO[bytes], targets: list[Path]) -> int:
    """Write the regular-file members of a tar stream to `targets` in order; return how many were written."""
    counter = [0]
    try:
        return _untar(stream, targets, counter)
    except (tarfile.TarError, EOFError) as exc:
        written = counter[0]
        where = str(targets[written]) if written < len(targets) else "the end of the stream"
        raise StreamBroken(
            f"the download stream broke at file {written + 1} of {len(targets)} ({where}) after {written} complete "
            f"file(s): {exc}; re-run to resume (intact files are skipped)"
        ) from exc


def _untar(stream: IO[bytes], targets: list[Path], counter: list[int]) -> int:
    written = 0
    with tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20) as tar:
        for member, target in zip(tar, targets, strict=False):
            source = tar.extractfile(member) if member.isfile() else None
            if source is None:
                raise OSError(f"{member.name}: not a regular file in the download stream")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name[:200]}.cb-part-{secrets.token_hex(4)}")
            try:
                with open(tmp, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
            written += 1
            counter[0] = written
    return written
