"""Byte streams over crawled files: gzip transparently, sha256 of the bytes on disk, bounded line reads."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class HashingReader(io.RawIOBase):
    """Reads a file while hashing exactly the bytes on disk (the ledger's sha256), however they are consumed."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115  (closed by close())
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = self._file.readinto(buffer)
        if n:
            self.sha256.update(memoryview(buffer)[:n])
            self.bytes_read += n
        return n or 0

    def finish(self) -> str:
        """Hash the rest of the file (a parser may stop early) and return the hex digest."""
        while chunk := self._file.read(_CHUNK):
            self.sha256.update(chunk)
            self.bytes_read += len(chunk)
        return self.sha256.hexdigest()

    def close(self) -> None:
        self._file.close()
        super().close()


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_content(raw: HashingReader, gzipped: bool) -> BinaryIO:
    """The decompressed content stream over a hashing reader."""
    buffered = io.BufferedReader(raw, buffer_size=_CHUNK)
    if gzipped:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


# What a damaged gzip raises depends on where it breaks: all mean "the rest of this file is unreadable".
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    offset: int  # byte offset of the line start in the decompressed content
    data: bytes  # without the line ending; at most `cap` bytes
    too_long: bool  # the line held more than `cap` bytes; only the first `cap` are in `data`


def iter_lines(stream: BinaryIO, cap: int) -> Iterator[Line]:
    """Lines of a stream, each held to `cap` bytes in memory however long it really is (a 2 GB line is fine)."""
    number, offset = 0, 0
    while head := stream.readline(cap + 1):
        number += 1
        length = len(head)
        too_long = len(head) > cap and not head.endswith(b"\n")
        if too_long:
            length += _skip_to_newline(stream)
        yield Line(number, offset, head.rstrip(b"\r\n")[:cap], too_long)
        offset += length


def _skip_to_newline(stream: BinaryIO) -> int:
    skipped = 0
    while True:
        part = stream.readline(_CHUNK)
        skipped += len(part)
        if not part or part.endswith(b"\n"):
            return skipped
