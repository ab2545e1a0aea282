"""Byte streams over crawled files: gzip transparently, sha256 of the bytes on disk, bounded line reads."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NamedTuple

from corpusbridge.ingest.discover import fs_path

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
# Files up to this size are read with one call and hashed in one pass. Most crawled files are a few kB, and the
# buffered, hash-as-you-read path cost ~50 us of Python per file (a second open, a 1 MiB buffer, readinto calls).
WHOLE_READ_MAX = 1 << 20


class FileRefused(OSError):
    """A listed file that is not read: gone, not a regular file, unreadable, or not the file that was listed.

    `error_class` is the quarantine reason (FileVanished, NotRegularFile, Unreadable, ChangedSinceListing).
    """

    def __init__(self, path: str, error_class: str, message: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, message, path)
        self.error_class = error_class
        self.message = message


class Identity(NamedTuple):
    """What makes a file the one that was checked: a swap (rename, symlink, FIFO) changes at least one."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open
_VANISHED = {errno.ENOENT, errno.ENOTDIR}
_NOT_REGULAR = {errno.ELOOP, errno.ENXIO, errno.ENODEV, errno.EISDIR, errno.EOPNOTSUPP}
_UNREADABLE = {errno.EACCES, errno.EPERM, errno.EIO}
# What open_source expects each path to still be, set by the chunk that checked its files (one chunk at a time
# per process): the reader's own open must find the same device, inode and size, or it refuses the file.
_checked: dict[str, Identity] = {}


@contextmanager
def checked_files(identities: dict[str, Identity]) -> Iterator[None]:
    _checked.update(identities)
    try:
        yield
    finally:
        _checked.clear()


def open_listed(path: str, size: int | None = None, mtime_ns: int | None = None) -> tuple[int, Identity]:
    """Open a listed file without following a symlink or blocking on a FIFO, and prove it is a regular file of the
    listed size and mtime. Returns (fd, identity); FileRefused says why not (other OSErrors are infrastructure)."""
    fd = _open_nofollow(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(path, "NotRegularFile", f"is {_kind(st.st_mode)}, not a regular file; not read")
        os.set_blocking(fd, True)
        found = Identity.of(st)
        if (size is not None and found.size != size) or (mtime_ns is not None and found.mtime_ns != mtime_ns):
            raise FileRefused(
                path, "ChangedSinceListing",
                f"changed after the directory listing (listed size {size}, mtime_ns {mtime_ns}; now "
                f"{found.size}, {found.mtime_ns}); it is read again by the next run",
            )  # fmt: skip
        return fd, found
    except BaseException:
        os.close(fd)
        raise


def _open_nofollow(path: str) -> int:
    try:
        return os.open(fs_path(path), _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in _VANISHED:
            raise FileRefused(path, "FileVanished", "deleted or moved after the directory listing", exc.errno) from exc
        if exc.errno in _NOT_REGULAR:
            what = "a symbolic link (not followed)" if exc.errno == errno.ELOOP else f"not a file ({exc.strerror})"
            raise FileRefused(path, "NotRegularFile", f"is {what}; not read", exc.errno) from exc
        if exc.errno in _UNREADABLE:
            raise FileRefused(path, "Unreadable", f"cannot be read: {exc.strerror}", exc.errno) from exc
        raise  # EMFILE, ENOMEM, ...: the machine's problem, not the file's


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}  # fmt: skip


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), f"of mode {mode:o}")


def _open_checked(path: Path) -> tuple[io.FileIO, int]:
    """The file as a raw binary stream and its size, refused unless it is still what the chunk checked."""
    name = str(path)
    fd, found = open_listed(name)
    expected = _checked.get(name)
    if expected is not None and found[:3] != expected[:3]:
        os.close(fd)
        raise FileRefused(name, "ChangedSinceListing", "replaced after it was checked (device, inode or size)")
    return io.FileIO(fd, "rb"), found.size


class HashingReader(io.RawIOBase):
    """Reads a file while hashing exactly the bytes on disk (the ledger's sha256), however they are consumed."""

    def __init__(self, file: io.FileIO, gzipped: bool) -> None:
        self._file = file  # already open: reopening by name would let a swap in between
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
    """A small file whole; a large one as a hashing stream that never holds it all. One open, never by a symlink."""
    f, size = _open_checked(path)
    try:
        # Sized to the file: a read(1 MiB) of a 3 kB file allocates and frees a 1 MiB buffer every time.
        data = f.read(size + 1) if size <= WHOLE_READ_MAX else f.read(2)
        if size <= WHOLE_READ_MAX and len(data) <= size:  # a file still growing takes the streaming path
            f.close()
            return WholeFile(data)
        f.seek(0)
        return HashingReader(f, gzipped=data[:2] == GZIP_MAGIC)
    except BaseException:
        f.close()
        raise


# What a damaged gzip raises depends on where it breaks: all mean "the rest of this file is unreadable".
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


class Line(NamedTuple):  # one per record of a JSON Lines file: a tuple is the cheapest thing to build
    number: int  # 1-based
    offset: int  # byte offset of the line start in the decompressed content
    data: bytes  # without the line ending; at most `cap` bytes
    too_long: bool  # the line held more than `cap` bytes; only the first `cap` are in `data`
    last_unended: bool = False  # the file's last line, with no line break after it (a file still being written?)


def iter_lines(stream: BinaryIO, cap: int) -> Iterator[Line]:
    """Lines of a stream, each held to `cap` bytes in memory however long it really is (a 2 GB line is fine)."""
    number, offset = 0, 0
    while head := stream.readline(cap + 1):
        number += 1
        length = len(head)
        too_long = len(head) > cap and not head.endswith(b"\n")
        if too_long:
            length += _skip_to_newline(stream)
        yield Line(number, offset, head.rstrip(b"\r\n")[:cap], too_long, not too_long and not head.endswith(b"\n"))
        offset += length


def _skip_to_newline(stream: BinaryIO) -> int:
    skipped = 0
    while True:
        part = stream.readline(_CHUNK)
        skipped += len(part)
        if not part or part.endswith(b"\n"):
            return skipped
