"""Shards loading at once (load/parallel.py) on the embedded PostgreSQL: the same rows as one at a time, a failing
shard stops the rest the same way, and a stop from outside cancels the statements in flight."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from load_support import (
    add_stray_document,
    copy_batch,
    output_rows,
    register_batch,
    table_counts,
)

from corpusbridge.graph.load import rebuild_graph
from corpusbridge.load.ledger import Provenance
from corpusbridge.load.parallel import loaded_shards
from corpusbridge.load.stage import LoadError, run_load

pytestmark = pytest.mark.integration

GRAPH = "SELECT concept_a, concept_b, docs, sentences FROM concept_pairs ORDER BY 1, 2"


def _load(db: psycopg.Connection, batch, workers: int):
    return run_load(db, batch.manifest, batch.results, provenance=Provenance("test__parallel"), workers=workers)


def test_shards_at_once_write_what_one_at_a_time_writes_and_a_rerun_adds_nothing(db, round_trip) -> None:
    batch = round_trip.first
    register_batch(db, batch)
    summary = _load(db, batch, workers=4)
    assert (summary.shards_loaded, summary.docs_loaded, summary.vectors_loaded) == (2, 240, 240) and summary.reconciled
    assert table_counts(db) == {"document_concepts": output_rows(batch, "concepts"), "document_vectors": 240,
                                "document_results": 240, "load_ledger": 2}  # fmt: skip
    folded = db.execute(GRAPH).fetchall()
    rebuild_graph(db)  # the graph counted again from every concept row equals the one the shards' deltas made
    assert db.execute(GRAPH).fetchall() == folded and folded

    again = _load(db, batch, workers=4)
    assert (again.shards_loaded, again.shards_skipped, again.docs_loaded) == (0, 2, 0)
    assert table_counts(db)["document_concepts"] == output_rows(batch, "concepts")


def test_a_failing_shard_lets_the_shard_in_flight_finish_and_names_itself(db, round_trip, tmp_path: Path) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    add_stray_document(batch, 1)
    with pytest.raises(LoadError, match=r"shard 1: results name documents the export did not put into this shard"):
        _load(db, batch, workers=2)
    ledger = [row[0] for row in db.execute("SELECT shard FROM load_ledger ORDER BY shard")]
    assert ledger == [0], "shard 0 loaded beside the failing one and committed; shard 1 wrote nothing"
    assert table_counts(db)["document_results"] == 120


def test_a_stop_from_outside_cancels_the_statements_in_flight(db) -> None:
    """The caller stops reading (Ctrl-C and SIGTERM unwind the same way): shards still running are cancelled,
    their transactions roll back, and the pool does not wait for them to finish on their own."""
    cancelled: list[int] = []

    def load_one(conn: psycopg.Connection, shard: int) -> int:
        if shard == 0:
            return 0
        try:
            with conn.transaction():
                conn.execute("SELECT pg_sleep(120)")  # a cancel that got lost would fail the test, not hang it
        except psycopg.errors.QueryCanceled:
            cancelled.append(shard)
            raise
        return shard

    shards = loaded_shards(db, [0, 1, 2], load_one, workers=3)
    assert next(shards) == (0, 0)
    shards.close()  # what an exception in the caller's loop body or a stop signal does to the generator
    assert sorted(cancelled) == [1, 2], "the sleeping shards ran to their end instead of being cancelled"
