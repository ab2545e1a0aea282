"""Walk a crawl tree lazily, in a deterministic order, yielding what the ledger compares: path, size, mtime."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FoundFile:
    path: str  # absolute
    size: int
    mtime_ns: int


def walk_files(root: Path, limit: int | None = None) -> Iterator[FoundFile]:
    """Regular files under `root`, sorted per directory (so `limit` picks a stable subset), hidden ones skipped."""
    if not root.is_dir():
        raise FileNotFoundError(f"source directory {root} does not exist or is not a directory")
    count = 0
    stack = [root.absolute()]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as scan:
            entries = sorted((e for e in scan if not e.name.startswith(".")), key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                yield FoundFile(entry.path, st.st_size, st.st_mtime_ns)
                count += 1
                if limit is not None and count >= limit:
                    return
        stack.extend(reversed(subdirs))
