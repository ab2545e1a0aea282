"""Issue 13 item 6: documents Elasticsearch refused are retried by later runs until they succeed, or are
recorded as rejected for good after REJECT_ATTEMPTS tries; the watermark never makes them forgotten."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest
from es_double import ClusterDouble, client_double

from corpusbridge.index import elastic
from corpusbridge.index.elastic import ALIAS, REJECT_ATTEMPTS, index_elasticsearch
from corpusbridge.sanitize.stage import run_sanitize

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
from sanitize_support import put_raw, raw_row

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elastic, "RETRY_BACKOFF_S", 0.0)


@pytest.fixture
def indexed(db: psycopg.Connection) -> tuple[psycopg.Connection, ClusterDouble]:
    """Five documents indexed cleanly, then two of them revised: the next run is incremental."""
    put_raw(db, *(raw_row(f"doc-{i}", title=f"Title {i}", abstract="Mild asthma therapy.") for i in range(5)))
    run_sanitize(db)
    cluster = ClusterDouble()
    index_elasticsearch(db, client_double(cluster))
    put_raw(db, raw_row("doc-1", title="Title one, revised"), raw_row("doc-3", title="Title three, revised"))
    run_sanitize(db)
    return db, cluster


def _rejects(db: psycopg.Connection) -> list[tuple]:
    return db.execute("SELECT doc_id, attempts, permanent FROM index_rejects ORDER BY doc_id").fetchall()


def test_a_refused_document_is_sent_again_by_the_next_run(indexed) -> None:  # type: ignore[no-untyped-def]
    db, cluster = indexed
    cluster.refuse["doc-3"] = (429, "es_rejected_execution_exception", "rejected execution (queue full)")
    cluster.refuse_times["doc-3"] = 1 + elastic.RETRIES  # the helper's own retries inside the run fail too
    first = index_elasticsearch(db, client_double(cluster))
    assert (first.mode, first.docs_in, first.docs_indexed, first.docs_failed) == ("incremental", 2, 1, 1)
    assert cluster.docs(ALIAS)["doc-3"]["title"] == "Title 3", "the index still has the stale version"
    assert _rejects(db) == [("doc-3", 1, False)]

    rerun = index_elasticsearch(db, client_double(cluster))  # nothing changed since: only the refused one goes
    assert (rerun.docs_in, rerun.docs_indexed, rerun.docs_failed) == (1, 1, 0)
    assert cluster.docs(ALIAS)["doc-3"]["title"] == "Title three, revised"
    assert _rejects(db) == []
    assert index_elasticsearch(db, client_double(cluster)).docs_in == 0


def test_a_document_refused_every_time_is_rejected_for_good_after_the_attempts(indexed) -> None:  # type: ignore[no-untyped-def]
    db, cluster = indexed
    cluster.refuse["doc-3"] = (400, "document_parsing_exception", "failed to parse field [title]")
    for attempt in range(1, REJECT_ATTEMPTS + 1):
        summary = index_elasticsearch(db, client_double(cluster))
        assert summary.docs_failed == 1 and summary.status == "succeeded"
        assert _rejects(db) == [("doc-3", attempt, attempt == REJECT_ATTEMPTS)]
    assert index_elasticsearch(db, client_double(cluster)).docs_in == 0, "given up: not sent again"

    put_raw(db, raw_row("doc-3", title="Title three, fixed at the source"))
    run_sanitize(db)
    cluster.refuse.clear()
    fixed = index_elasticsearch(db, client_double(cluster))  # a new version is a new chance
    assert (fixed.docs_in, fixed.docs_indexed) == (1, 1) and _rejects(db) == []
