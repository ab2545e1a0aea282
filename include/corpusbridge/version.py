"""The code version every record of a run carries: the package version plus the build (the image's commit, or the
checkout's), so that a row tells which code made it, on the workstation and on the nodes alike."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

import corpusbridge


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the build, as every result records it: `CORPUSBRIDGE_CODE_VERSION` (the image sets it,
    scripts/build-image.sh), else the commit of the git checkout the package runs from (an editable install, on the
    workstation or a cluster), `-dirty` when the library differs from it; else the version alone."""
    extra = os.environ.get("CORPUSBRIDGE_CODE_VERSION") or _checkout_commit()
    return f"{corpusbridge.__version__}+{extra}" if extra else corpusbridge.__version__


def _checkout_commit() -> str | None:
    """`g<commit>[-dirty]` as build-image.sh writes it, or None outside a git checkout (an installed wheel)."""
    package = Path(corpusbridge.__file__).resolve().parent
    root = package.parents[1]  # include/corpusbridge -> the repository
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
        clean = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", "include", "pyproject.toml"],
                               capture_output=True, timeout=10, check=False).returncode == 0  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"g{commit}{'' if clean else '-dirty'}" if commit else None
