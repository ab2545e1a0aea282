"""Worker processes that behave the same inside an Airflow task and outside it, and never outlive their parent.

Pool workers are started with `spawn`: a forked worker would inherit the parent's database sockets, so after a
`kill -9` of the parent its session (and the stage lock that session holds) stayed open for as long as any worker
lived. A spawned worker inherits no descriptor but its pipes, and the kernel kills it when its parent dies.

A spawned worker also re-runs its parent's `__main__` script when that is a file. Inside an Airflow task the script
is the `airflow` CLI: the worker would import Airflow, which initializes its ORM from the task runner's deliberately
unusable `sql_alchemy_conn` and dies, breaking the pool. Workers need only importable library modules, so the pool's
processes start with the script hidden (`main_script_hidden`), wherever the pool runs.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

# `spawn` unless a test needs its monkeypatches inherited by the workers (then "fork": do not ship that).
START_METHOD = "spawn"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def reset_inherited_signals() -> None:
    """Pool initializer: restore default SIGTERM handling in a forked worker.

    Airflow's task runner installs a SIGTERM handler that returns without doing anything in any process other than
    the task's own. A forked pool worker inherits it, so `Pool.terminate()` (which SIGTERMs its workers, then joins
    them) would wait forever, and a killed task would leave its workers running.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux); exit at once if the parent is gone already.

    The death signal follows the *thread* that started the process: pools must be created (first `submit`) from a
    thread that lives as long as the pool, as the main thread of the CLI and of an Airflow task does.
    """
    if sys.platform.startswith("linux"):
        import ctypes  # here: a process that starts no pool (the concepts-only payload) never pays for it

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed: nobody will ask for work
        os._exit(1)


def start_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """Every pool worker's initializer: default SIGTERM, die with the parent, then the pool's own initializer."""
    reset_inherited_signals()
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A process pool whose workers inherit no connection, lock or socket of ours and exit when we die.

    `initializer` (a module-level function: spawned workers import it by name) runs once in each worker.
    """
    context = _ScriptlessSpawnContext() if START_METHOD == "spawn" else multiprocessing.get_context(START_METHOD)
    return ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )


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


class _ScriptlessSpawnProcess(SpawnProcess):
    """A spawned process whose start does not hand the parent's `__main__` script to the child."""

    def start(self) -> None:
        with main_script_hidden():
            super().start()


class _ScriptlessSpawnContext(SpawnContext):
    Process = _ScriptlessSpawnProcess
