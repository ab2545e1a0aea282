"""Pool workers: they die on SIGTERM inside an Airflow task, inherit nothing of the parent, and die with it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from process_support import running

from corpusbridge.processes import die_with_parent, reset_inherited_signals


@pytest.fixture
def airflow_like_sigterm_handler() -> Iterator[None]:
    """What airflow.sdk's task runner installs: in any process but the task's own, SIGTERM does nothing."""
    parent = os.getpid()

    def on_term(signum, frame):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            return

    previous = signal.signal(signal.SIGTERM, on_term)
    yield
    signal.signal(signal.SIGTERM, previous)


def _idle_worker(initializer, ready) -> None:  # type: ignore[no-untyped-def]
    if initializer is not None:
        initializer()
    ready.set()
    time.sleep(60)


def _worker_survives_sigterm(initializer) -> bool:  # type: ignore[no-untyped-def]
    """Fork a pool-like worker, send it what Pool.terminate() sends, and see whether it is still alive."""
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    worker = context.Process(target=_idle_worker, args=(initializer, ready))
    worker.start()
    try:
        assert ready.wait(10)
        os.kill(worker.pid, signal.SIGTERM)
        worker.join(3)
        return worker.exitcode is None
    finally:
        worker.kill()
        worker.join()


@pytest.mark.timeout(60)
def test_pool_workers_die_on_sigterm_once_the_handler_is_reset(airflow_like_sigterm_handler) -> None:
    assert _worker_survives_sigterm(None), "precondition: the inherited handler makes workers ignore SIGTERM"
    assert not _worker_survives_sigterm(reset_inherited_signals)


@pytest.mark.timeout(120)
@pytest.mark.integration
def test_parallel_ingest_finishes_under_the_airflow_handler(airflow_like_sigterm_handler, db, tmp_path) -> None:
    from gen_corpus import generate

    from corpusbridge.ingest.stage import IngestOptions, run_ingest

    generate(tmp_path / "c", 300, seed=5)
    assert run_ingest(db, tmp_path / "c", IngestOptions(workers=2)).reconciled


# A parent that starts a pool of two busy workers, says which they are, then waits to be killed.
_PARENT = """
import os, time
from corpusbridge.processes import worker_pool
pool = worker_pool(2)
for future in [pool.submit(time.sleep, 0.3) for _ in range(2)]:
    future.result()
print(" ".join(str(p) for p in pool._processes), flush=True)
pool.submit(time.sleep, 600)
pool.submit(time.sleep, 600)
time.sleep(600)
"""


@pytest.mark.timeout(120)
def test_pool_workers_die_when_their_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(running(pid) for pid in workers)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(running(pid) for pid in workers), f"workers {workers} outlived their killed parent"
    finally:
        parent.kill()


def test_a_worker_whose_parent_is_already_gone_exits_at_once() -> None:
    """The death signal can only be armed after start: a parent that died before that is caught by its pid."""
    worker = multiprocessing.get_context("fork").Process(target=die_with_parent, args=(os.getpid() + 4_000_000,))
    worker.start()
    worker.join(30)
    assert worker.exitcode == 1


def _pid() -> int:
    return os.getpid()


def test_pool_workers_do_not_rerun_the_parents_main_script(monkeypatch, tmp_path) -> None:
    """Inside an Airflow task `__main__` is the `airflow` CLI, which a spawned worker must not run again."""
    import types

    from corpusbridge.processes import worker_pool

    script = tmp_path / "airflow"
    script.write_text("raise SystemExit('a worker re-ran the airflow CLI')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main)
    with worker_pool(2) as pool:
        pids = {pool.submit(_pid).result(timeout=60) for _ in range(4)}
    assert pids and os.getpid() not in pids
    assert main.__file__ == str(script), "the script is hidden only while a worker starts"
