"""Pools inside an Airflow task: Airflow's SIGTERM handler, inherited by forked workers, ignores the signal there."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator

import pytest

from corpusbridge.processes import reset_inherited_signals


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
