"""The export stage on the embedded PostgreSQL: selections, duplicates, pending logic, determinism, crash safety."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from sanitize_support import put_raw, raw_row

from corpusbridge.export import shards as shards_module
from corpusbridge.export.manifest import read_manifest, shard_path
from corpusbridge.export.schema import ROW_GROUP_ROWS, SHARD_SCHEMA
from corpusbridge.export.selection import Selection
from corpusbridge.export.stage import abandon_batch, run_export
from corpusbridge.index.stage import run_index
from corpusbridge.sanitize.stage import run_sanitize

pytestmark = pytest.mark.integration

BODY = "Patients were followed for fifty two weeks in a randomized double blind multicentre trial of {}."
DICT, MODEL = "dict-v1", "model-h1"


def _corpus(count: int = 30) -> list[dict]:
    rows = [
        raw_row(
            f"doc-{i:03d}",
            title=f"Study {i} of {'wildfire' if i % 5 == 0 else 'asthma'}",
            abstract=BODY.format(f"treatment {i}"),
            year=2000 + i % 10,
            source_format="jsonl" if i % 2 else "openalex",
        )
        for i in range(count)
    ]
    # A duplicate: the same text as doc-003 under another id; sanitize links it to doc-003 (its canonical).
    rows.append(raw_row("zz-dup-of-003", title=rows[3]["title"], abstract=rows[3]["abstract"], year=2003))
    return rows


@pytest.fixture
def corpus(db: psycopg.Connection) -> psycopg.Connection:
    put_raw(db, *_corpus())
    run_sanitize(db, workers=1)
    run_index(db)
    return db


def _exported_ids(summary) -> list[str]:
    manifest_path = Path(summary.manifest)
    manifest = read_manifest(manifest_path)
    ids: list[str] = []
    for entry in manifest.shards:
        ids += pq.read_table(shard_path(manifest_path, entry), columns=["doc_id"]).column("doc_id").to_pylist()
    return ids


def _simulate_load(conn: psycopg.Connection, batch_id: str, dictionary: str = DICT, model: str | None = MODEL) -> None:
    """What the load stage leaves behind: a ledger row per shard and a document_results row per document."""
    conn.execute(
        "INSERT INTO load_ledger (batch_id, shard, result_sha256, code_version, dictionary_version, model_hash,"
        " docs, concepts, vectors) SELECT DISTINCT batch_id, shard, 'x', 'test', %s, %s, 0, 0, 0"
        " FROM export_batch_documents WHERE batch_id = %s",
        (dictionary, model, batch_id),
    )
    conn.execute(
        "INSERT INTO document_results (doc_id, batch_id, shard, clean_seq, dictionary_version, model_hash)"
        " SELECT doc_id, batch_id, shard, clean_seq, %s, %s FROM export_batch_documents WHERE batch_id = %s"
        " ON CONFLICT (doc_id) DO UPDATE SET batch_id = EXCLUDED.batch_id, shard = EXCLUDED.shard,"
        " clean_seq = EXCLUDED.clean_seq, dictionary_version = EXCLUDED.dictionary_version,"
        " model_hash = EXCLUDED.model_hash",
        (dictionary, model, batch_id),
    )
    conn.execute("UPDATE export_batches SET status = 'loaded' WHERE batch_id = %s", (batch_id,))
    conn.commit()


def test_all_exports_canonical_documents_in_doc_id_order_with_the_schema(corpus, tmp_path) -> None:
    summary = run_export(corpus, Selection(mode="all"), tmp_path, shard_rows=12)
    ids = _exported_ids(summary)
    assert ids == sorted(f"doc-{i:03d}" for i in range(30))  # the duplicate is not exported twice
    assert summary.docs_exported == 30 and summary.shards == 3 and summary.status == "succeeded"
    manifest = read_manifest(Path(summary.manifest))
    assert [e.rows for e in manifest.shards] == [12, 12, 6] and manifest.batch_id == summary.batch_id
    table = pq.read_table(shard_path(Path(summary.manifest), manifest.shards[0]))
    assert table.schema.equals(SHARD_SCHEMA)
    first = table.to_pylist()[0]
    assert first["text"] == f"{first['title']}\n\n{BODY.format('treatment 0')}" and first["year"] == 2000
    stored = corpus.execute(
        "SELECT shard_count, rows, status, manifest_path FROM export_batches WHERE batch_id = %s", (summary.batch_id,)
    ).fetchone()
    assert stored == (3, 30, "exported", summary.manifest)
    per_shard = corpus.execute(
        "SELECT shard, count(*) FROM export_batch_documents WHERE batch_id = %s GROUP BY shard ORDER BY shard",
        (summary.batch_id,),
    ).fetchall()
    assert per_shard == [(0, 12), (1, 12), (2, 6)]
    run = corpus.execute("SELECT status, batch_id, shards, docs_exported FROM export_runs").fetchall()
    assert run == [("succeeded", summary.batch_id, 3, 30)]


def test_filters_select_what_they_say(corpus, tmp_path) -> None:
    def ids(**kwargs) -> list[str]:
        summary = run_export(corpus, Selection(mode="all", **kwargs), tmp_path)
        return _exported_ids(summary) if summary.batch_id else []

    assert ids(year_from=2008, year_to=2009) == [f"doc-{i:03d}" for i in range(30) if i % 10 >= 8]
    assert ids(source="openalex") == [f"doc-{i:03d}" for i in range(0, 30, 2)]
    assert ids(limit=4) == ["doc-000", "doc-001", "doc-002", "doc-003"]
    assert ids(query="wildfire") == [f"doc-{i:03d}" for i in range(0, 30, 5)]
    assert ids(doc_ids=("doc-007", "doc-001", "no-such-doc", "zz-dup-of-003")) == ["doc-001", "doc-007"]
    now = datetime.now(UTC)
    assert len(ids(cleaned_from=now - timedelta(hours=1), cleaned_to=now + timedelta(hours=1))) == 30
    assert ids(cleaned_from=now + timedelta(hours=1), cleaned_to=now + timedelta(hours=2)) == []


def test_pending_sends_only_new_or_changed_work_for_this_dictionary_and_model(corpus, tmp_path) -> None:
    selection = Selection(dictionary_version=DICT, model_hash=MODEL)
    first = run_export(corpus, selection, tmp_path)
    assert first.docs_exported == 30
    # In flight (exported, not loaded): the same selection gets the same batch back, nothing written again.
    again = run_export(corpus, selection, tmp_path)
    assert (again.batch_id, again.reused, again.docs_exported) == (first.batch_id, True, 30)
    # Another pending selection for the same dictionary/model does not send in-flight documents again.
    assert (
        run_export(corpus, Selection(year_from=2000, dictionary_version=DICT, model_hash=MODEL), tmp_path).shards == 0
    )
    _simulate_load(corpus, first.batch_id)
    assert run_export(corpus, selection, tmp_path).batch_id is None  # loaded: nothing pending
    # A changed document and a new one are pending; so is everything for another dictionary.
    put_raw(corpus, raw_row("doc-004", title="Study 4 revised", abstract=BODY.format("a new arm"), year=2004))
    put_raw(corpus, raw_row("new-001", title="A new study", abstract=BODY.format("something new"), year=2020))
    run_sanitize(corpus, workers=1)
    changed = run_export(corpus, selection, tmp_path)
    assert _exported_ids(changed) == ["doc-004", "new-001"]
    other = run_export(corpus, Selection(dictionary_version="dict-v2", model_hash=MODEL), tmp_path)
    assert other.docs_exported == 31


def test_pending_with_any_dictionary_counts_any_result(corpus, tmp_path) -> None:
    first = run_export(corpus, Selection(mode="all", dictionary_version=DICT, model_hash=None), tmp_path)
    _simulate_load(corpus, first.batch_id, model=None)
    assert run_export(corpus, Selection(), tmp_path).batch_id is None
    assert run_export(corpus, Selection(dictionary_version=DICT, model_hash=MODEL), tmp_path).docs_exported == 30


def test_re_export_gives_byte_identical_shards_and_the_same_batch_id(corpus, tmp_path) -> None:
    selection = Selection(mode="all", dictionary_version=DICT)
    first = run_export(corpus, selection, tmp_path / "a", shard_rows=7)
    assert run_export(corpus, selection, tmp_path / "b", shard_rows=7).reused  # in flight: returned as it is
    abandon_batch(corpus, first.batch_id)
    second = run_export(corpus, selection, tmp_path / "b", shard_rows=7)
    assert second.batch_id == first.batch_id and not second.reused
    a, b = Path(first.manifest).parent, Path(second.manifest).parent
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 6  # 5 shards + manifest
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    stored = corpus.execute("SELECT count(*), max(manifest_path), max(status) FROM export_batches").fetchone()
    assert stored == (1, second.manifest, "exported")  # the same row, in flight again, pointing at the new copy
    assert corpus.execute("SELECT count(*) FROM export_batch_documents").fetchone() == (30,)
    # Other shard targets cut other shards: another batch.
    assert run_export(corpus, selection, tmp_path / "c", shard_rows=8).batch_id != first.batch_id


def test_a_lost_in_flight_batch_is_written_again_with_the_same_id(corpus, tmp_path) -> None:
    selection = Selection(dictionary_version=DICT, model_hash=MODEL)
    first = run_export(corpus, selection, tmp_path)
    shard = Path(first.manifest).parent / "shard-00000.parquet"
    before = shard.read_bytes()
    shard.unlink()
    again = run_export(corpus, selection, tmp_path)
    assert (again.batch_id, again.reused) == (first.batch_id, False) and shard.read_bytes() == before


def test_row_groups_and_byte_target(corpus, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(shards_module, "ROW_GROUP_ROWS", 4)
    summary = run_export(corpus, Selection(mode="all"), tmp_path, shard_rows=10, shard_bytes=1)
    manifest = read_manifest(Path(summary.manifest))
    # shard_bytes=1: every shard is full after its first row group.
    assert [e.rows for e in manifest.shards] == [4] * 7 + [2]
    meta = pq.ParquetFile(shard_path(Path(summary.manifest), manifest.shards[0])).metadata
    assert meta.num_row_groups == 1 and ROW_GROUP_ROWS == 2048


def test_nothing_to_export_makes_no_batch(db, tmp_path) -> None:
    summary = run_export(db, Selection(), tmp_path)
    assert (summary.batch_id, summary.shards, summary.docs_exported, summary.manifest) == (None, 0, 0, None)
    assert db.execute("SELECT count(*) FROM export_batches").fetchone() == (0,)
    assert db.execute("SELECT status FROM export_runs").fetchall() == [("succeeded",)]
    assert list(tmp_path.iterdir()) == []


def test_a_crash_mid_export_leaves_no_batch_and_no_half_shard(corpus, tmp_path, monkeypatch) -> None:
    original = shards_module.ShardWriter._close_shard
    calls = {"n": 0}

    def crash_on_second_shard(self) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        original(self)

    monkeypatch.setattr(shards_module.ShardWriter, "_close_shard", crash_on_second_shard)
    with pytest.raises(OSError, match="disk full"):
        run_export(corpus, Selection(mode="all"), tmp_path, shard_rows=10)
    assert corpus.execute("SELECT count(*) FROM export_batches").fetchone() == (0,)
    assert corpus.execute("SELECT count(*) FROM export_batch_documents").fetchone() == (0,)
    assert corpus.execute("SELECT status, error FROM export_runs").fetchone() == (
        "failed",
        "OSError: disk full (simulated)",
    )
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert run_export(corpus, Selection(mode="all"), tmp_path, shard_rows=10).docs_exported == 30


def test_selection_round_trips_through_json() -> None:
    selection = Selection(
        mode="all", year_from=2001, doc_ids=("b", "a"), cleaned_from=datetime(2026, 1, 1, tzinfo=UTC), query="x"
    )
    back = Selection.from_dict(json.loads(json.dumps(selection.as_dict())))
    assert back.as_dict() == selection.as_dict() and back.doc_ids == ("a", "b")


def test_rows_stream_through_a_server_side_cursor_one_row_group_at_a_time(corpus, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(shards_module, "ROW_GROUP_ROWS", 4)
    original = shards_module.ShardWriter.add
    seen = {"cursors": set(), "buffered": 0}

    def watching_add(self, *row):
        if not seen["cursors"]:  # the same session, between two FETCHes of the export's cursor
            seen["cursors"] = {name for (name,) in corpus.execute("SELECT name FROM pg_cursors").fetchall()}
        seen["buffered"] = max(seen["buffered"], len(self._buffer))
        return original(self, *row)

    monkeypatch.setattr(shards_module.ShardWriter, "add", watching_add)
    assert run_export(corpus, Selection(mode="all"), tmp_path).docs_exported == 30
    assert seen["cursors"] == {"corpusbridge_export"} and seen["buffered"] < 4


def test_the_query_is_parsed_with_the_index_text_configuration() -> None:
    from corpusbridge.export import statements

    try:
        from corpusbridge.index.statements import TEXT_CONFIG as index_config  # type: ignore[attr-defined]
    except ImportError:
        from corpusbridge.index.fulltext import TEXT_CONFIG as index_config
    assert index_config == statements.TEXT_CONFIG


def test_an_abandoned_batch_gives_its_documents_back_to_pending(corpus, tmp_path) -> None:
    from corpusbridge.export.stage import BatchNotFound

    first = run_export(corpus, Selection(limit=5, dictionary_version=DICT), tmp_path)
    assert run_export(corpus, Selection(dictionary_version=DICT), tmp_path).docs_exported == 25
    assert abandon_batch(corpus, first.batch_id) == "abandoned"
    back = run_export(corpus, Selection(year_to=2009, dictionary_version=DICT), tmp_path)
    assert _exported_ids(back) == ["doc-000", "doc-001", "doc-002", "doc-003", "doc-004"]
    _simulate_load(corpus, back.batch_id, model=None)
    assert abandon_batch(corpus, back.batch_id) == "loaded"
    with pytest.raises(BatchNotFound, match="no export batch 'nope'"):
        abandon_batch(corpus, "nope")


def test_a_killed_runs_temp_folder_is_removed_by_the_next_run(corpus, tmp_path) -> None:
    stale = tmp_path / ".export-tmp-12345-dead"
    stale.mkdir()
    (stale / ".shard-00000.parquet.tmp-12345").write_bytes(b"half a shard")
    (tmp_path / ".export-tmp-12345-dead.documents").write_text("doc\t0\t1\n")
    summary = run_export(corpus, Selection(mode="all"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [summary.batch_id]
