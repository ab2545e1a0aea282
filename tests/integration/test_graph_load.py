"""The concept graph on real payload results and the embedded PostgreSQL: equal to a brute-force count, loaded
exactly once with the shard's ledger row, and updated without double counting when documents are reprocessed."""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from pathlib import Path

import psycopg
import pytest
from load_support import TERMS_V1, TERMS_V2, Batch, corpus, dictionary, make_batch, register_batch

from corpusbridge.export.manifest import read_manifest
from corpusbridge.graph.query import related
from corpusbridge.graph.stats import npmi
from corpusbridge.load.ledger import Provenance
from corpusbridge.load.stage import load_shard, run_load
from corpusbridge.load.verify import verify_results
from corpusbridge.runs import Stage, start_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Batch, Batch]:
    """240 documents in 2 shards with dictionary v1; the first 120 again with v2 (a reprocess), concepts only."""
    root = tmp_path_factory.mktemp("graph")
    docs = corpus(240, seed=11)
    first = make_batch(root, "graph-a", docs, dictionary(root, "v1", TERMS_V1), shard_rows=120, embeddings=False)
    again = make_batch(root, "graph-b", docs[:120], dictionary(root, "v2", TERMS_V2), shard_rows=60, embeddings=False)
    return first, again


def _load(db: psycopg.Connection, batch: Batch) -> None:
    run_load(db, batch.manifest, batch.results, provenance=Provenance("test__graph"))


def brute_force(db: psycopg.Connection) -> dict[str, object]:
    """The graph recounted from every loaded concept row, pair by pair, in Python."""
    docs: dict[str, set[str]] = {}
    sentences: dict[tuple[str, int], set[str]] = {}
    for doc_id, concept_id, sentence in db.execute("SELECT doc_id, concept_id, sentence FROM document_concepts"):
        docs.setdefault(doc_id, set()).add(concept_id)
        sentences.setdefault((doc_id, sentence), set()).add(concept_id)
    pair_docs = Counter(p for found in docs.values() for p in combinations(sorted(found), 2))
    pair_sentences = Counter(p for found in sentences.values() for p in combinations(sorted(found), 2))
    return {
        "pairs": {p: (n, pair_sentences.get(p, 0)) for p, n in pair_docs.items()},
        "concepts": (
            Counter(c for found in docs.values() for c in found),
            Counter(c for found in sentences.values() for c in found),
        ),
        "totals": (db.execute("SELECT count(*) FROM document_results").fetchone()[0], len(sentences)),  # type: ignore[index]
    }


def graph(db: psycopg.Connection) -> dict[str, object]:
    pairs = {
        (a, b): (d, s) for a, b, d, s in db.execute("SELECT concept_a, concept_b, docs, sentences FROM concept_pairs")
    }
    rows = db.execute("SELECT concept_id, docs, sentences FROM concept_docs").fetchall()
    totals = db.execute("SELECT docs, sentences FROM graph_totals").fetchone()
    return {
        "pairs": pairs,
        "concepts": (Counter({c: d for c, d, _ in rows}), Counter({c: s for c, _, s in rows})),
        "totals": tuple(totals) if totals else (0, 0),
    }


def test_graph_equals_brute_force_and_npmi_to_1e9(db: psycopg.Connection, batches: tuple[Batch, Batch]) -> None:
    first, _ = batches
    register_batch(db, first)
    _load(db, first)

    expected = brute_force(db)
    assert graph(db) == expected
    assert len(expected["pairs"]) >= 3  # type: ignore[arg-type]
    total_docs, total_sentences = expected["totals"]  # type: ignore[misc]
    concept_docs, concept_sentences = expected["concepts"]  # type: ignore[misc]
    for concept in concept_docs:
        found = related(db, concept, limit=100)
        for n in found.neighbours:
            pair = tuple(sorted((concept, n.concept_id)))
            joint_docs, joint_sentences = expected["pairs"][pair]  # type: ignore[index]
            assert (n.docs, n.sentences) == (joint_docs, joint_sentences)
            want = npmi(joint_docs, concept_docs[concept], concept_docs[n.concept_id], total_docs)
            assert n.npmi_docs == pytest.approx(want, abs=1e-9)
            want_s = npmi(joint_sentences, concept_sentences[concept], concept_sentences[n.concept_id], total_sentences)
            assert (n.npmi_sentences is None and want_s is None) or n.npmi_sentences == pytest.approx(want_s, abs=1e-9)


def test_rerun_and_a_retried_shard_change_nothing(db: psycopg.Connection, batches: tuple[Batch, Batch]) -> None:
    first, _ = batches
    register_batch(db, first)
    _load(db, first)
    before = graph(db)

    _load(db, first)  # a rerun: every shard is in the ledger
    assert graph(db) == before

    # A retry that gets past the ledger check (a worker that died after the commit): the shard's transaction
    # fails on its ledger row, and the graph merge inside it rolls back with it.
    shard = verify_results(read_manifest(first.manifest), first.results)[0]
    with pytest.raises(psycopg.errors.UniqueViolation):
        load_shard(db, first.batch_id, shard, run_id=1, provenance=Provenance("test__retry"))
    db.rollback()
    assert graph(db) == before == brute_force(db)


def test_a_load_that_died_before_the_fold_is_folded_by_the_next(
    db: psycopg.Connection, batches: tuple[Batch, Batch]
) -> None:
    """A shard's delta commits with its ledger row and waits; the next load run folds it first, exactly once."""
    first, _ = batches
    register_batch(db, first)
    shard = verify_results(read_manifest(first.manifest), first.results)[0]
    run_id = start_run(db, Stage.LOAD, {"batch_id": first.batch_id, "run_label": "test__died"})
    load_shard(db, first.batch_id, shard, run_id=run_id, provenance=Provenance("test__died"))  # then it died
    assert db.execute("SELECT count(*) FROM graph_pending_totals").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM concept_pairs").fetchone() == (0,), "not folded yet"

    _load(db, first)  # folds the dead run's shard, loads the other, folds it
    assert db.execute("SELECT count(*) FROM graph_pending_pairs").fetchone() == (0,)
    assert graph(db) == brute_force(db)


def test_reprocessed_documents_replace_their_pairs(db: psycopg.Connection, batches: tuple[Batch, Batch]) -> None:
    first, again = batches
    register_batch(db, first)
    _load(db, first)
    before = graph(db)["pairs"]  # type: ignore[assignment]
    register_batch(db, again, clean_seq=2)
    _load(db, again)

    after = graph(db)
    assert after == brute_force(db)
    # v2 has no C1/C4/C5: their pairs now come from the 120 documents v1 still describes (shard 1) only.
    shard1 = set(first.doc_ids[120:])
    c1_docs = {d for (d,) in db.execute("SELECT DISTINCT doc_id FROM document_concepts WHERE concept_id = 'C1'")}
    assert c1_docs <= shard1 and after["concepts"][0]["C1"] == len(c1_docs) > 0  # type: ignore[index]
    # Pairs of v1-only concepts lost the documents of shard 0: the old pairs are gone, not kept beside the new.
    v1_pairs = [p for p in before if set(p) <= {"C1", "C3", "C4", "C5"}]  # type: ignore[union-attr]
    assert v1_pairs and all(after["pairs"].get(p, (0, 0))[0] < before[p][0] for p in v1_pairs)  # type: ignore[union-attr,index]
    assert any(set(p) & {"C6", "C7"} for p in after["pairs"])  # type: ignore[union-attr]
    assert after["totals"][0] == 240  # type: ignore[index]  # the 120 documents are counted once, not twice


def test_results_without_a_partial_are_counted_from_their_rows(
    db: psycopg.Connection, batches: tuple[Batch, Batch], tmp_path: Path
) -> None:
    """Results written before the payload mapped the graph: the load counts their staged rows in SQL."""
    import json
    import shutil

    first, _ = batches
    results = tmp_path / "old-results"
    shutil.copytree(first.results, results)
    for entry_path in results.glob("result-*.json"):
        entry = json.loads(entry_path.read_text())
        for name in ("cooccurrence", "concept_docs"):
            entry["outputs"].pop(name)
        entry_path.write_text(json.dumps(entry))
    register_batch(db, first)
    run_load(db, first.manifest, results, provenance=Provenance("test__old"))
    assert graph(db) == brute_force(db)


def test_a_graph_that_drifted_from_its_rows_fails_the_fold_and_rebuild_mends_it(
    db: psycopg.Connection, batches: tuple[Batch, Batch]
) -> None:
    """Counts that would go below zero mean the graph no longer equals document_concepts: the fold refuses (its
    transaction rolls back) and names the fix; `rebuild_graph` counts it again from the rows."""
    from corpusbridge.graph.load import GraphMismatch, rebuild_graph

    first, again = batches
    register_batch(db, first)
    _load(db, first)
    db.execute("UPDATE concept_pairs SET docs = 0, sentences = 0")  # drift: the pairs lost their documents
    db.commit()
    register_batch(db, again, clean_seq=2)
    with pytest.raises(GraphMismatch, match=r"rebuild it \(`corpusbridge graph rebuild`\)"):
        _load(db, again)
    db.rollback()
    assert db.execute("SELECT count(*) FROM graph_pending_totals").fetchone()[0] == 2  # the deltas wait, unfolded

    rebuild_graph(db)
    assert graph(db) == brute_force(db)


def test_replaced_rows_are_read_back_whole_whatever_their_matched_text_holds(
    db: psycopg.Connection, batches: tuple[Batch, Batch]
) -> None:
    """The load reads a reprocessed shard's previous rows through COPY ... CSV into Arrow: a matched form with a
    comma, a quote or a line break must come back as it went in, each document's rows together."""
    from corpusbridge.graph.load import _replaced_rows

    first, _ = batches
    register_batch(db, first)
    odd = 'small, "cell"\nlung'
    rows = [
        (first.doc_ids[1], "C2", 0, 5, 0, odd),
        (first.doc_ids[0], "C1", 3, 7, 1, "lung"),
        ("doc:other", "C1", 0, 4, 0, "x"),
    ]
    with db.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO document_concepts (doc_id, concept_id, start_offset, end_offset, sentence, matched, batch_id, "
            "shard) VALUES (%s, %s, %s, %s, %s, %s, 'earlier', 0)",
            rows,
        )
    table = _replaced_rows(db, {"batch": first.batch_id, "shard": 0})
    assert table.to_pylist() == [
        {"doc_id": first.doc_ids[0], "concept_id": "C1", "sentence": 1, "matched": "lung"},
        {"doc_id": first.doc_ids[1], "concept_id": "C2", "sentence": 0, "matched": odd},
    ]  # doc:other is in no shard of this batch


def test_a_new_concept_is_labelled_by_the_shard_that_mentions_it_most(db: psycopg.Connection) -> None:
    """Not by the alphabetically last of the shards' labels (what max(label) gave), and a later load keeps it."""
    from corpusbridge.graph.load import fold_pending

    def pend(batch: str, rows: list[tuple[str, str, int]]) -> None:
        for shard, (label, concept, mentions) in enumerate(rows):
            db.execute("INSERT INTO graph_pending_concepts VALUES (%s, %s, 1, 1, %s)", (concept, label, mentions))
            db.execute("INSERT INTO graph_pending_totals VALUES (%s, %s, 1, 1)", (batch, shard))
        db.commit()
        fold_pending(db)

    pend("b1", [("tumour", "C:tumor", 2), ("neoplasm", "C:tumor", 9), ("zeta", "C:tumor", 1)])
    pend("b2", [("zzz", "C:tumor", 50)])
    assert db.execute("SELECT label, mentions FROM concept_docs WHERE concept_id = 'C:tumor'").fetchone() == (
        "neoplasm",
        62,
    )
