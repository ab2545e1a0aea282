"""Let library worker pools (`spawn`) start inside an Airflow task.

A spawned worker re-runs its parent's `__main__` script when that is a file. Inside an Airflow task the script is
the `airflow` CLI: the worker imports Airflow, which initializes its ORM from the task runner's deliberately
unusable `sql_alchemy_conn` and dies ("Could not parse SQLAlchemy URL"), so the pool breaks (BrokenProcessPool)
and the task fails. The workers need only importable library modules, never the script.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def main_script_hidden() -> Iterator[None]:
    """While inside, spawned processes start without re-running the parent's `__main__` script."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(main, "__spec__", None) is not None:
        yield  # run with -m (workers import the module by name) or no script: nothing to hide
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def spawn_safe(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a task-side stage function whose library call may start a worker pool."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with main_script_hidden():
            return func(*args, **kwargs)

    return wrapper
