"""Byte streams over crawled files: gzip transparently, sha256 of the bytes on disk, bounded line reads."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
# Files up to this size are read with one call and hashed in one pass. Most crawled files are a few kB, and the
# buffered, hash-as-you-read path cost ~50 us of Python per file (a second open, a 1 MiB buffer, readinto calls).
WHOLE_READ_MAX = 1 << 20


class HashingReader(io.RawIOBase):
    """Reads a file while hashing exactly the bytes on disk (the ledger's sha256), however they are consumed."""

    def __init__(self, path: Path, gzipped: bool) -> None:
        self._file = open(path, "rb")  # noqa: SIM115  (closed by close())
        self._gzipped = gzipped
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

    def content(self) -> BinaryIO:
        """The decompressed content stream over this reader."""
        buffered = io.BufferedReader(self, buffer_size=_CHUNK)
        if self._gzipped:
            return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
        return buffered  # type: ignore[return-value]

    def close(self) -> None:
        self._file.close()
        super().close()


class _PeekableBytes(io.BytesIO):
    """Bytes in memory with the `peek` of a buffered reader (format detection looks at the head)."""

    def peek(self, size: int = 0) -> bytes:
        position = self.tell()
        with self.getbuffer() as view:
            return bytes(view[position : position + max(size, 1)])


class WholeFile:
    """A small file's bytes, read in one call: hashed in one pass, decompressed as a stream."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.bytes_read = len(data)

    def content(self) -> BinaryIO:
        if self.data[:2] != GZIP_MAGIC:
            return _PeekableBytes(self.data)
        return gzip.GzipFile(fileobj=io.BytesIO(self.data), mode="rb")  # type: ignore[return-value]

    def finish(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def close(self) -> None:
        self.data = b""


def open_source(path: Path) -> WholeFile | HashingReader:
    """A small file whole; a large one as a hashing stream that never holds it all."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        # Sized to the file: a read(1 MiB) of a 3 kB file allocates and frees a 1 MiB buffer every time.
        data = f.read(size + 1) if size <= WHOLE_READ_MAX else f.read(2)
    if size <= WHOLE_READ_MAX and len(data) <= size:  # a file still growing takes the streaming path
        return WholeFile(data)
    return HashingReader(path, gzipped=data[:2] == GZIP_MAGIC)


# What a damaged gzip raises depends on where it breaks: all mean "the rest of this file is unreadable".
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class Line(NamedTuple):  # one per record of a JSON Lines file: a tuple is the cheapest thing to build
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
