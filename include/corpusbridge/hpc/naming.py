"""Deterministic job names and scratch directories.

The name is derived from what identifies the work (dag, task, run, map index, input hash) and NEVER from
the try number: a retry or a restarted worker computes the same name, finds the job already queued or
running under it, and re-attaches instead of submitting a second copy.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# squeue prints %j truncated in some setups and sites limit name length; 64 is safe everywhere.
MAX_JOB_NAME = 64


@dataclass(frozen=True)
class WorkKey:
    """What identifies one unit of SLURM work for a task instance."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    input_hash: str = ""

    def digest(self) -> str:
        payload = json.dumps(
            [self.dag_id, self.task_id, self.run_id, self.map_index, self.input_hash], separators=(",", ":")
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def input_hash(parameters: Mapping[str, object]) -> str:
    """sha256 of the parameters that define the work (command, array, options, inputs), canonical JSON.

    Changing the command therefore gives a new job name and scratch dir rather than re-attaching to a
    job that runs something else.
    """
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def slug(text: str, limit: int = 24) -> str:
    """A readable, shell- and path-safe fragment; the digest carries uniqueness, not the slug."""
    cleaned = _UNSAFE.sub("-", text).strip("-.") or "x"
    return cleaned[:limit]


def job_name(key: WorkKey) -> str:
    """`cb-<dag>-<task>-<digest16>`: readable in squeue, unique per work key."""
    name = f"cb-{slug(key.dag_id, 20)}-{slug(key.task_id, 20)}-{key.digest()[:16]}"
    return name[:MAX_JOB_NAME]


def scratch_dir(root: str, key: WorkKey) -> str:
    """`<root>/<dag>/<task>[-m<map>]/<digest16>`: per run, stable across retries, browsable by humans."""
    if not root or not posixpath.isabs(root):
        raise ValueError(
            f"scratch root must be an absolute remote path, got {root!r}; set the connection's `scratch_root` extra"
        )
    task = slug(key.task_id, 48) + (f"-m{key.map_index}" if key.map_index >= 0 else "")
    return posixpath.join(root, slug(key.dag_id, 48), task, key.digest()[:16])
