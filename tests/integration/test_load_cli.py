"""`corpusbridge load / status / similar / concepts --json` on real results in the embedded PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from load_support import RoundTrip, copy_batch, register_batch

from corpusbridge.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def loaded(db, db_uri: str, round_trip: RoundTrip, capsys: pytest.CaptureFixture[str]) -> dict:
    register_batch(db, round_trip.first)
    out = _cli(capsys, "load", "--manifest", str(round_trip.first.manifest), "--results",
               str(round_trip.first.results), "--run-label", "cli-test", "--db", db_uri)  # fmt: skip
    return out


def _cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> dict:
    assert main([*argv, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def test_load_prints_its_counts_and_the_reconciliation(loaded: dict) -> None:
    keys = {"run_id", "batch_id", "run_label", "shards_loaded", "shards_skipped", "docs_loaded", "docs_processed",
            "concepts_loaded", "vectors_loaded", "reconciliation", "reconciled", "seconds", "status"}  # fmt: skip
    assert keys <= loaded.keys()
    assert (loaded["batch_id"], loaded["shards_loaded"], loaded["docs_loaded"], loaded["status"]) == (
        "batch-a", 2, 240, "succeeded")  # fmt: skip
    assert loaded["reconciliation"]["ok"] and loaded["reconciliation"]["docs_exported"] == 240


def test_a_failed_load_prints_the_bad_shards_and_exits_1(db, db_uri, round_trip, tmp_path, capsys) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    (batch.results / "concepts-0.parquet").unlink()
    out = _cli(capsys, "load", "--manifest", str(batch.manifest), "--results", str(batch.results), "--db", db_uri,
               code=1)  # fmt: skip
    assert out["status"] == "failed" and "ResultVerificationError" in out["error"]
    assert out["bad_shards"] == [{"index": 0, "file": "concepts-0.parquet", "reason": "missing"}]


def test_status_shows_each_stage_the_tables_and_the_last_reconciliation(loaded, db_uri, capsys) -> None:
    status = _cli(capsys, "status", "--db", db_uri)
    assert status.keys() == {"database", "stages", "tables", "unfinished_batches", "last_reconciliation"}
    assert status["unfinished_batches"] == []  # the batch is loaded
    assert "password" not in status["database"] and "dbname=" in status["database"]
    assert status["stages"]["load"]["runs"] == {"succeeded": 1}
    assert status["stages"]["load"]["last_run"]["counts"]["docs_loaded"] == 240
    assert {"document_concepts", "document_vectors", "clean_documents"} <= status["tables"].keys()
    assert status["tables"]["document_vectors"]["bytes"] > 0
    rec = status["last_reconciliation"]
    assert (rec["batch_id"], rec["docs_exported"], rec["docs_processed"], rec["docs_loaded"], rec["ok"]) == (
        "batch-a", 240, 240, 240, True)  # fmt: skip
    assert main(["status", "--db", db_uri]) == 0  # the text says what the last runs did, not only that they ran
    assert "batch batch-a: 240 processed, 240 loaded (2 shards loaded, 0 already in the ledger)" in (
        capsys.readouterr().out
    )


def test_status_counts_the_rows_of_a_load_no_analyze_has_seen(loaded, db_uri, capsys) -> None:
    """Right after a first load reltuples is still -1; the rows written are counted all the same (the loading
    server process reports them as it exits, so allow it a moment)."""
    deadline = time.monotonic() + 10
    while True:
        tables = _cli(capsys, "status", "--db", db_uri)["tables"]
        if tables["document_concepts"]["rows_estimate"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert tables["document_concepts"]["rows_estimate"] == loaded["concepts_loaded"], tables
    assert tables["document_results"]["rows_estimate"] == 240, tables


def test_similar_lists_neighbours_with_titles_and_cosine(loaded, db, db_uri, capsys) -> None:
    out = _cli(capsys, "similar", "doc:00010", "--limit", "5", "--db", db_uri)
    neighbours = out["neighbours"]
    assert out["doc_id"] == "doc:00010" and len(neighbours) == 5
    assert all(n.keys() == {"doc_id", "title", "similarity"} for n in neighbours)
    assert "doc:00010" not in {n["doc_id"] for n in neighbours} and neighbours[0]["title"].startswith("Study ")
    similarities = [n["similarity"] for n in neighbours]
    assert similarities == sorted(similarities, reverse=True) and 0 < similarities[0] <= 1
    exact = db.execute(
        "SELECT v.doc_id FROM document_vectors v, document_vectors q WHERE q.doc_id = 'doc:00010' "
        "AND v.doc_id <> q.doc_id ORDER BY v.embedding <=> q.embedding LIMIT 1"
    ).fetchone()[0]
    assert neighbours[0]["doc_id"] == exact  # the index finds the true nearest on a corpus this small


def test_concepts_lists_offsets_matched_text_and_sentences(loaded, db, db_uri, capsys) -> None:
    doc_id = db.execute("SELECT doc_id FROM document_concepts WHERE sentence = 0 ORDER BY doc_id LIMIT 1").fetchone()[0]
    out = _cli(capsys, "concepts", doc_id, "--db", db_uri)
    assert out.keys() == {"doc_id", "title", "batch_id", "dictionary_version", "concepts"}
    assert out["batch_id"] == "batch-a" and out["concepts"]
    first = out["concepts"][0]
    assert first.keys() == {"concept_id", "start", "end", "sentence", "matched", "sentence_text"}
    assert first["end"] - first["start"] == len(first["matched"])
    # the sentence is the payload's: it holds the match, and the title is sentence 0 of the exported text
    for hit in out["concepts"]:
        assert hit["matched"] in hit["sentence_text"]
        assert hit["sentence"] > 0 or hit["sentence_text"].startswith(out["title"])


def test_similar_of_an_unknown_document_says_what_to_run(db_uri) -> None:
    with pytest.raises(SystemExit, match="no clean document has this id"):
        main(["similar", "doc:nope", "--db", db_uri])


def test_a_rejected_document_is_told_apart_from_an_unknown_id(db, db_uri) -> None:
    db.execute("INSERT INTO sanitize_rejects (doc_id, reason, detail, source_seq, run_id) "
               "VALUES ('doi:10.1/empty', 'no_text', 'no title, abstract or full text', 1, 1)")  # fmt: skip
    db.commit()
    with pytest.raises(SystemExit, match=r"sanitize rejected this document: no_text \(no title"):
        main(["concepts", "doi:10.1/empty", "--db", db_uri])


def test_a_document_without_results_is_told_apart_from_an_unknown_id(loaded, db, db_uri) -> None:
    doc_id = db.execute("SELECT doc_id FROM document_vectors ORDER BY doc_id LIMIT 1").fetchone()[0]
    db.execute("DELETE FROM document_vectors WHERE doc_id = %s", (doc_id,))
    db.commit()
    with pytest.raises(SystemExit, match="no vector loaded for this document; run the pipeline with embeddings"):
        main(["similar", doc_id, "--db", db_uri])


def test_a_lookup_error_with_json_is_a_json_object(db_uri, capsys) -> None:
    assert main(["concepts", "doc:nope", "--db", db_uri, "--json"]) == 1
    assert "no clean document has this id" in json.loads(capsys.readouterr().out)["error"]
