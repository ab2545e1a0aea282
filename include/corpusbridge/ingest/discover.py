"""Walk a crawl tree lazily, in a deterministic order, yielding what the ledger compares: path, size, mtime.

What is listed and what is read are two moments: the reader (`reader.open_listed`) checks again that each path is
still the regular file listed here. Symbolic links, FIFOs, sockets and devices are listed too, so that they reach
the quarantine with a reason (NotRegularFile) instead of vanishing silently; they are never followed or read.
Hidden entries (a leading dot: `.git`, `.DS_Store`) are skipped and counted in the log.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# A path whose bytes are not UTF-8 cannot be stored as PostgreSQL text: it is listed under this escaped name
# (undecodable bytes as \xNN, backslashes doubled). No absolute path starts with it, so it names one file only.
NON_UTF8_PREFIX = "non-utf8:"
_ESCAPE = re.compile(r"\\\\|\\x([0-9a-f]{2})")


@dataclass(frozen=True)
class FoundFile:
    path: str  # absolute; NON_UTF8_PREFIX + escaped form when the name is not UTF-8 (see fs_path)
    size: int
    mtime_ns: int


def listed_name(path: str) -> str:
    """The name stored for a path from the file system (str with surrogateescape for undecodable bytes)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        escaped = "".join(
            f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else "\\\\" if c == "\\" else c for c in path
        )
        return NON_UTF8_PREFIX + escaped


def fs_path(name: str) -> str | bytes:
    """The file system path of a listed name: the inverse of `listed_name`."""
    if not name.startswith(NON_UTF8_PREFIX):
        return name
    body = name[len(NON_UTF8_PREFIX) :]
    text = _ESCAPE.sub(lambda m: "\\" if m.group(1) is None else chr(0xDC00 + int(m.group(1), 16)), body)
    return os.fsencode(text)


def require_source_dir(root: Path) -> None:
    """A crawl folder that is not there is a typo to report before any run starts (and before anything is recorded)."""
    if not root.is_dir():
        raise FileNotFoundError(f"source directory {root} does not exist or is not a directory")


def walk_files(root: Path, limit: int | None = None, skipped: Counter[str] | None = None) -> Iterator[FoundFile]:
    """Files under `root`, sorted per directory (so `limit` picks a stable subset), hidden ones skipped.

    What was skipped is counted by kind into `skipped` (the run keeps it in `ingest_runs.files_skipped`).
    """
    require_source_dir(root)
    skipped = Counter[str]() if skipped is None else skipped
    try:
        for count, found in enumerate(_walk(root.absolute(), skipped), start=1):
            yield found
            if limit is not None and count >= limit:
                return
    finally:
        if skipped:
            log.info("listing %s skipped %s", root, ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items())))


def _walk(root: Path, skipped: Counter[str]) -> Iterator[FoundFile]:
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                skipped["hidden entries"] += 1
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(Path(entry.path))
            else:  # regular files, and symlinks/FIFOs/sockets so that they are quarantined, not silently dropped
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    skipped["entries gone while listing"] += 1
                    continue
                yield FoundFile(listed_name(entry.path), st.st_size, st.st_mtime_ns)
        stack.extend(reversed(subdirs))
