"""Scratch confinement: what a run stages in or fetches must stay inside the run's scratch folder.

Fields like `stage_out` are templated, so a DAG Param can set them; a pattern such as `../*.txt`, `/etc/passwd`, or
a link planted in scratch (`out -> /etc`) must not carry a transfer outside. Patterns are checked as text first,
then every path is resolved ON THE CLUSTER (`realpath -m`, links followed) and compared with the resolved scratch
folder, before anything moves.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from pathlib import PurePosixPath

from corpusbridge.hpc.transport import Transport

_BATCH = 200  # paths per remote command: far below ARG_MAX on any login node
# Prints each argument resolved on the cluster (symlinks followed, missing parts allowed), NUL-terminated, or an
# empty entry when it cannot be resolved. `&& echo .` keeps a trailing newline of a name through `$(...)`.
_RESOLVE = (
    'for p; do if r=$(realpath -m -- "$p" 2>/dev/null && echo .); then printf "%s\\0" "${r%??}"; '
    'else printf "\\0"; fi; done'
)


class ScratchEscapeError(RuntimeError):
    """A stage_in or stage_out path would reach outside the run's scratch folder; raised before any transfer."""


def confine_patterns(patterns: Sequence[str], root: str) -> list[str]:
    """Patterns as paths under `root` (relative ones joined onto it); one with a `..` part, or absolute and
    outside `root`, raises ScratchEscapeError naming it."""
    root = posixpath.normpath(root)
    confined: list[str] = []
    for pattern in patterns:
        path = pattern if posixpath.isabs(pattern) else posixpath.join(root, pattern)
        if ".." in PurePosixPath(pattern).parts or not posixpath.normpath(path).startswith(root + "/"):
            raise ScratchEscapeError(
                f"stage_out pattern {pattern!r} reaches outside the run's scratch folder {root}: give a path "
                "relative to it, without '..' (e.g. 'out/*.parquet')"
            )
        confined.append(path)
    return confined


def confine(transport: Transport, paths: Sequence[str], root: str) -> None:
    """Resolve `paths` and `root` ON THE CLUSTER (symlinks followed) and refuse any path not strictly inside root:
    a link planted in scratch (`out -> /etc`) must not carry a transfer out of it."""
    for start in range(0, len(paths), _BATCH):
        batch = list(paths[start : start + _BATCH])
        result = transport.run(["sh", "-c", _RESOLVE, "sh", root, *batch])
        resolved = result.stdout.split("\0")[:-1]
        if not result.ok or len(resolved) != len(batch) + 1 or not resolved[0].startswith("/"):
            raise ScratchEscapeError(
                f"resolving {len(batch)} paths under {root} on {transport.name} failed (rc {result.returncode}; "
                f"the cluster needs GNU realpath): {result.stderr.strip()[-300:]}"
            )
        base = resolved[0].rstrip("/") + "/"
        outside = [(p, r) for p, r in zip(batch, resolved[1:], strict=True) if not r.startswith(base)]
        if outside:
            shown = ", ".join(f"{p!r} -> {r!r}" for p, r in outside[:5])
            raise ScratchEscapeError(
                f"{len(outside)} path(s) resolve outside the run's scratch folder {root} ({shown}); nothing was "
                "transferred. Fix the stage_in/stage_out paths, or remove the links that lead out of scratch"
            )
