"""The load killed with SIGKILL inside a shard's transaction, then retried: every row exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from load_support import RoundTrip, output_rows, register_batch, table_counts

from corpusbridge.load.ledger import Provenance
from corpusbridge.load.stage import run_load

pytestmark = pytest.mark.integration

# The loader in a process of its own. Its only change: after shard 1's rows and ledger row are written, inside the
# still-open transaction, it says so and waits to be killed (the test double of a crash at the worst moment). With
# shards loading at once, the test waits for shard 0 to commit beside it before the kill.
LOADER = """
import sys, time
from pathlib import Path
import corpusbridge.load.ledger as ledger
from corpusbridge.db import connect
from corpusbridge.load.stage import run_load

record = ledger.record
def record_then_hang(conn, batch_id, shard, *args, **kwargs):
    record(conn, batch_id, shard, *args, **kwargs)
    if shard.index == 1:
        print("inside shard 1", flush=True)
        time.sleep(600)
ledger.record = record_then_hang
conn = connect(sys.argv[1])
run_load(conn, Path(sys.argv[2]), Path(sys.argv[3]), provenance=ledger.Provenance("crashed-run"))
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_load_killed_inside_a_shard_transaction_then_retried_loads_every_row_once(
    db, db_uri: str, round_trip: RoundTrip, workers: int
) -> None:
    batch = round_trip.first
    register_batch(db, batch)
    loader = subprocess.Popen(
        [sys.executable, "-c", LOADER, db_uri, str(batch.manifest), str(batch.results)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ
        | {
            "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "include"),
            "CORPUSBRIDGE_LOAD_WORKERS": str(workers),
        },
    )
    try:
        assert loader.stdout is not None and loader.stdout.readline().strip() == "inside shard 1"
        in_flight = _committed_shards(db, at_least=1)
        loader.send_signal(signal.SIGKILL)
    finally:
        loader.kill()
        loader.wait()
    assert in_flight == 1  # shard 0 committed; shard 1's rows were written but not committed
    _wait_for_backend_exit(db)
    assert table_counts(db)["load_ledger"] == 1 and table_counts(db)["document_results"] == 120

    retry = run_load(db, batch.manifest, batch.results, provenance=Provenance("retry"))
    assert (retry.shards_loaded, retry.shards_skipped, retry.docs_loaded) == (1, 1, 120) and retry.reconciled
    assert table_counts(db) == {
        "document_concepts": output_rows(batch, "concepts"),
        "document_vectors": 240,
        "document_results": 240,
        "load_ledger": 2,
    }
    runs = db.execute("SELECT status, error FROM load_runs ORDER BY run_id").fetchall()
    assert runs == [("failed", "interrupted"), ("succeeded", None)]


def _committed_shards(db, at_least: int, timeout: float = 60) -> int:
    """Ledger rows committed, once there are `at_least` (a shard loading beside the hung one commits on its own)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db.execute("SELECT count(*) FROM load_ledger").fetchone()[0]
        db.commit()
        if rows >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _wait_for_backend_exit(db) -> None:
    """The killed client's server process ends (releasing the stage lock) once it reads the closed socket."""
    for _ in range(200):
        busy = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        db.commit()
        if busy == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the killed loader's server process is still there after 10 s")
