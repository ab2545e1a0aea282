"""Where corpusbridge keeps its state, and which database it talks to, read in one place."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "CORPUSBRIDGE_HOME"
DB_ENV = "CORPUSBRIDGE_DB"
DEFAULT_HOME = ".corpusbridge"


def home_path() -> Path:
    """The state folder, `$CORPUSBRIDGE_HOME`, else `./.corpusbridge`, without creating it."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def home_dir() -> Path:
    """The state folder (`home_path`), created on demand."""
    home = home_path()
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_uri(explicit: str | None = None) -> str | None:
    """The PostgreSQL URI to use, or None for the embedded server.

    Order: an explicit `--db` value, then `$CORPUSBRIDGE_DB`.
    """
    return explicit or os.environ.get(DB_ENV) or None


LOAD_WORKERS_ENV = "CORPUSBRIDGE_LOAD_WORKERS"


def load_workers() -> int:
    """Shards a load writes at once: `$CORPUSBRIDGE_LOAD_WORKERS`, else the cores up to 4 (each is one server
    backend writing the same indexes: more than a few mostly wait on each other)."""
    configured = os.environ.get(LOAD_WORKERS_ENV, "")
    return max(1, int(configured)) if configured.isdigit() else min(4, worker_count())


def worker_count() -> int:
    """Cores this process may use: SLURM's grant when present, else the affinity mask."""
    granted = os.environ.get("SLURM_CPUS_PER_TASK")
    if granted and granted.isdigit():
        return max(1, int(granted))
    return max(1, len(os.sched_getaffinity(0)))
