"""The one way corpusbridge hashes a file: streamed sha256 (bounded memory whatever the size)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path


def file_sha256(path: Path | str, read_bytes: int = 2**18) -> str:
    """Reads of `read_bytes` (256 KiB, as `hashlib.file_digest`) into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(read_bytes)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


class BackgroundSha256:
    """A file's sha256 computed on a thread while the caller does other start-up work: hashlib releases the GIL
    while it hashes and while it reads, so on a second core this takes none of the caller's time."""

    # Big reads: this thread needs the GIL back after each one, and while the caller runs Python that can take up to
    # the switch interval (5 ms); with 256 KiB reads the hash of a 35 MB shard took 3x longer.
    READ_BYTES = 8 * 2**20

    def __init__(self, path: Path) -> None:
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="sha256", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            self._digest = file_sha256(path, self.READ_BYTES)
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self._error = exc

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._digest is not None
        return self._digest
