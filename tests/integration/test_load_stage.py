"""The load stage on real payload results and the embedded PostgreSQL: verified, exactly once, reconciled."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from load_support import (
    RoundTrip,
    add_stray_document,
    copy_batch,
    output_rows,
    register_batch,
    rewrite_output,
    table_counts,
)

from corpusbridge.graph.load import GraphMismatch
from corpusbridge.load.ledger import Provenance, ResultChanged
from corpusbridge.load.reconcile import ReconciliationError, reconcile
from corpusbridge.load.stage import LoadError, run_load
from corpusbridge.load.verify import ResultVerificationError

pytestmark = pytest.mark.integration


PROVENANCE = Provenance(run_label="test__run-1", image_digest="sha256:" + "ab" * 32)


def _load(db, batch, label: str = "test__run-1", workers: int = 1):
    """One shard at a time unless asked: the tests of a failing shard count on the shards before it being loaded
    and those after it not (test_load_parallel.py has the shards-at-once cases)."""
    return run_load(db, batch.manifest, batch.results, provenance=Provenance(label, PROVENANCE.image_digest),
                    workers=workers)  # fmt: skip


def test_load_writes_every_row_once_with_provenance_and_reconciles(db, round_trip: RoundTrip) -> None:
    batch = round_trip.first
    register_batch(db, batch)
    summary = _load(db, batch)

    assert (summary.shards_loaded, summary.shards_skipped, summary.docs_loaded) == (2, 0, 240)
    assert summary.concepts_loaded == output_rows(batch, "concepts") > 0
    assert summary.vectors_loaded == 240 and summary.reconciled
    assert table_counts(db) == {
        "document_concepts": summary.concepts_loaded,
        "document_vectors": 240,
        "document_results": 240,
        "load_ledger": 2,
    }
    ledger = db.execute(
        "SELECT run_label, image_digest, dictionary_version, model_hash, embedding_runtime, code_version, docs "
        "FROM load_ledger ORDER BY shard"
    ).fetchall()
    assert {row[:5] for row in ledger} == {
        ("test__run-1", PROVENANCE.image_digest, batch.dictionary_version, ledger[0][3], "numpy")
    }
    assert ledger[0][3] and [row[6] for row in ledger] == [120, 120]
    assert db.execute("SELECT status FROM export_batches").fetchone()[0] == "loaded"
    run = db.execute("SELECT status, docs_loaded, reconciliation FROM load_runs").fetchone()
    assert run[0] == "succeeded" and run[1] == 240
    assert run[2] | {"missing_doc_ids": []} == {
        "batch_id": "batch-a", "docs_exported": 240, "docs_processed": 240, "docs_loaded": 240,
        "docs_missing": 0, "missing_doc_ids": [], "ok": True,
    }  # fmt: skip
    stage_row = db.execute("SELECT counts FROM stage_runs WHERE stage = 'load'").fetchone()[0]
    assert stage_row["reconciliation"]["ok"] is True
    # every concept row points into its document's exported text
    offsets = db.execute("SELECT min(start_offset) >= 0, bool_and(end_offset > start_offset) FROM document_concepts")
    assert offsets.fetchone() == (True, True)


def test_a_second_load_skips_every_shard_and_changes_no_row(db, round_trip: RoundTrip) -> None:
    batch = round_trip.first
    register_batch(db, batch)
    _load(db, batch)
    before = table_counts(db), _checksum(db)
    again = _load(db, batch, "test__run-2")
    assert (again.shards_loaded, again.shards_skipped, again.docs_loaded, again.concepts_loaded) == (0, 2, 0, 0)
    assert again.reconciled and (table_counts(db), _checksum(db)) == before
    # the ledger keeps who loaded the shard first
    assert {r[0] for r in db.execute("SELECT run_label FROM load_ledger")} == {"test__run-1"}


def test_bad_results_are_named_by_shard_file_and_reason_and_only_good_shards_load(
    db, round_trip: RoundTrip, tmp_path: Path
) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    concepts = batch.results / "concepts-1.parquet"
    data = bytearray(concepts.read_bytes())
    data[len(data) // 2] ^= 0xFF
    concepts.write_bytes(bytes(data))

    with pytest.raises(ResultVerificationError) as caught:
        _load(db, batch)
    assert caught.value.indices == [1]
    assert "shard 1: concepts-1.parquet: sha256 mismatch" in str(caught.value)
    assert table_counts(db)["load_ledger"] == 1 and table_counts(db)["document_results"] == 120
    run = db.execute("SELECT status, error FROM load_runs").fetchone()
    assert run[0] == "failed" and "concepts-1.parquet" in run[1]

    # re-fetched: the retry loads only the missing shard, and the batch reconciles
    concepts.write_bytes((round_trip.first.results / "concepts-1.parquet").read_bytes())
    retry = _load(db, batch)
    assert (retry.shards_loaded, retry.shards_skipped) == (1, 1) and retry.reconciled


def test_missing_file_and_wrong_input_sha_are_both_listed(db, round_trip: RoundTrip, tmp_path: Path) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    (batch.results / "vectors-0.parquet").unlink()
    result = batch.results / "result-1.json"
    entry = json.loads(result.read_text())
    entry["input_sha256"] = "0" * 64
    result.write_text(json.dumps(entry))

    with pytest.raises(ResultVerificationError) as caught:
        _load(db, batch)
    message = str(caught.value)
    assert caught.value.indices == [0, 1]
    assert "shard 0: vectors-0.parquet: missing" in message
    assert "shard 1: result-1.json: input sha256 000000000000" in message
    assert table_counts(db)["load_ledger"] == 0


def test_a_result_changed_after_its_load_is_refused(db, round_trip: RoundTrip, tmp_path: Path) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    _load(db, batch)
    result = batch.results / "result-0.json"
    result.write_text(result.read_text().replace('"numpy"', '"torch:cuda"'))
    with pytest.raises(ResultChanged, match=r"batch batch-a shard 0: result-0\.json has sha256 .* changed after"):
        _load(db, batch)


def test_reprocessing_with_a_new_dictionary_replaces_concepts_and_keeps_vectors(db, round_trip: RoundTrip) -> None:
    first, again = round_trip.first, round_trip.again
    register_batch(db, first)
    _load(db, first)
    vectors_before = _vectors_checksum(db)
    register_batch(db, again)
    summary = _load(db, again, "test__reprocess")

    assert summary.docs_loaded == 120 and summary.vectors_loaded == 0
    reprocessed = tuple(again.doc_ids)
    concept_ids = {r[0] for r in db.execute("SELECT DISTINCT concept_id FROM document_concepts WHERE doc_id = ANY(%s)",
                                             (list(reprocessed),))}  # fmt: skip
    assert concept_ids and concept_ids <= {"C2", "C6", "C7"}  # only dictionary v2's concepts
    assert db.execute("SELECT count(*) FROM document_concepts WHERE doc_id = ANY(%s)", (list(reprocessed),)).fetchone()[
        0
    ] == output_rows(again, "concepts")
    versions = dict(db.execute("SELECT dictionary_version, count(*) FROM document_results GROUP BY 1").fetchall())
    assert versions == {again.dictionary_version: 120, first.dictionary_version: 120}
    assert _vectors_checksum(db) == vectors_before  # a concepts-only result keeps the vectors of unchanged text
    assert reconcile(db, "batch-a").ok and reconcile(db, "batch-b").ok


def test_lost_rows_fail_the_run_after_recording_the_missing_ids(db, round_trip: RoundTrip) -> None:
    batch = round_trip.first
    register_batch(db, batch)
    _load(db, batch)
    db.execute("DELETE FROM document_results WHERE doc_id IN ('doc:00003', 'doc:00200')")
    db.commit()

    result = reconcile(db, "batch-a")
    assert not result.ok and result.missing_doc_ids == ["doc:00003", "doc:00200"]
    assert (result.docs_exported, result.docs_processed, result.docs_loaded) == (240, 240, 238)
    with pytest.raises(ReconciliationError, match=r"2 missing \(doc:00003, doc:00200\)"):
        _load(db, batch, "test__run-2")
    run = db.execute("SELECT status, reconciliation FROM load_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    assert run[0] == "failed" and run[1]["missing_doc_ids"] == ["doc:00003", "doc:00200"]


def test_a_batch_the_database_never_exported_is_refused(db, round_trip: RoundTrip) -> None:
    with pytest.raises(Exception, match="batch batch-a is not in export_batches"):
        _load(db, round_trip.first)


def _checksum(db) -> tuple:
    return db.execute(
        "SELECT md5(string_agg(doc_id || concept_id || start_offset || matched || batch_id || shard, ',' "
        "ORDER BY doc_id, start_offset, concept_id)) FROM document_concepts"
    ).fetchone(), _vectors_checksum(db)


def _vectors_checksum(db) -> str:
    return db.execute(
        "SELECT md5(string_agg(doc_id || embedding::text, ',' ORDER BY doc_id)) FROM document_vectors"
    ).fetchone()[0]


def test_a_manifest_other_than_the_exported_one_or_an_abandoned_batch_is_refused(
    db, round_trip: RoundTrip, tmp_path: Path
) -> None:
    batch = round_trip.first
    register_batch(db, batch)
    edited = tmp_path / "manifest.json"
    edited.write_text(batch.manifest.read_text().replace('"rows": 120', '"rows": 119', 1))
    with pytest.raises(LoadError, match=r"not the manifest the export wrote for batch batch-a"):
        run_load(db, edited, batch.results, provenance=PROVENANCE)
    db.execute("UPDATE export_batches SET status = 'abandoned'")
    db.commit()
    with pytest.raises(LoadError, match=r"batch batch-a was abandoned"):
        _load(db, batch)
    assert table_counts(db)["load_ledger"] == 0


def _record_image(batch, index: int, digest: str) -> None:
    """What the payload writes inside an image: its result-I.json names the image's digest."""
    path = batch.results / f"result-{index}.json"
    entry = json.loads(path.read_text())
    path.write_text(json.dumps(entry | {"image_digest": digest}, indent=2))


def output_rows_of(batch, name: str, index: int) -> int:
    return pq.ParquetFile(batch.results / f"{name}-{index}.parquet").metadata.num_rows


def test_the_image_digest_comes_from_each_result_into_every_loaded_rows_provenance(
    db, round_trip: RoundTrip, tmp_path: Path
) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    image = "sha256:" + "cd" * 32
    _record_image(batch, 0, image)
    run_load(db, batch.manifest, batch.results, provenance=Provenance("test__images"))
    by_shard = dict(db.execute("SELECT shard, image_digest FROM load_ledger").fetchall())
    assert by_shard == {0: image, 1: None}  # shard 1's payload ran outside a container
    rows = db.execute(
        "SELECT l.image_digest, count(*) FROM document_concepts c JOIN load_ledger l USING (batch_id, shard) "
        "WHERE c.shard = 0 GROUP BY 1"
    ).fetchall()
    assert rows == [(image, output_rows_of(batch, "concepts", 0))]


def test_a_given_image_digest_that_disagrees_with_a_result_loads_nothing_and_names_the_shard(
    db, round_trip: RoundTrip, tmp_path: Path
) -> None:
    from corpusbridge.load.ledger import ImageDigestConflict

    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    recorded, given = "sha256:" + "cd" * 32, "sha256:" + "ef" * 32
    _record_image(batch, 1, recorded)
    with pytest.raises(ImageDigestConflict) as caught:
        run_load(db, batch.manifest, batch.results, provenance=Provenance("test__conflict", given))
    assert caught.value.indices == [1]
    assert f"shard 1: result-1.json says {recorded}" in str(caught.value) and given in str(caught.value)
    assert set(table_counts(db).values()) == {0}
    # the same digest as the result's is no conflict; a result without one takes the caller's
    run_load(db, batch.manifest, batch.results, provenance=Provenance("test__agree", recorded))
    assert dict(db.execute("SELECT shard, image_digest FROM load_ledger").fetchall()) == {0: recorded, 1: recorded}


def test_a_result_naming_a_document_of_another_shard_is_refused_with_its_id(
    db, round_trip: RoundTrip, tmp_path: Path
) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    add_stray_document(batch, 1)
    with pytest.raises(LoadError, match=r"shard 1: results name documents the export did not put into this shard "
                       r"\(doc:99999\)"):  # fmt: skip
        _load(db, batch)
    counts = table_counts(db)  # shard 0 loaded before, shard 1 not at all
    assert counts["load_ledger"] == 1 and counts["document_concepts"] == output_rows_of(batch, "concepts", 0)


def test_a_graph_partial_from_another_payload_run_is_refused_and_loads_nothing_of_its_shard(
    db, round_trip: RoundTrip, tmp_path: Path
) -> None:
    batch = copy_batch(round_trip.first, tmp_path)
    register_batch(db, batch)
    concepts = pq.read_table(batch.results / "concepts-0.parquet")
    last_doc = concepts.column("doc_id")[-1].as_py()
    kept = concepts.filter(pc.not_equal(concepts.column("doc_id"), last_doc))
    rewrite_output(batch, 0, "concepts", kept)  # the rows lost a document's concepts; the partial still counts them
    with pytest.raises(GraphMismatch, match=r"shard 0: concept-docs-0.parquet counts \d+ \(document, concept\) "):
        _load(db, batch)
    assert table_counts(db)["load_ledger"] == 0 and table_counts(db)["document_concepts"] == 0
