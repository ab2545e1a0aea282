"""verify: a fetched result is trusted only when its files, input sha256 and rows agree with the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusbridge.export.manifest import ExportManifest, ShardEntry, read_manifest, write_manifest
from corpusbridge.export.schema import SHARD_SCHEMA, schema_fingerprint
from corpusbridge.extract.dictionary import build_dictionary
from corpusbridge.extract.program import run_extract, shard_from_manifest
from corpusbridge.hashing import file_sha256
from corpusbridge.load.verify import ResultVerificationError, check_results, verify_results


@pytest.fixture
def fetched(tmp_path: Path) -> tuple[Path, Path]:
    """Two shards of a tiny export and the real payload's concepts-only results for them."""
    entries = []
    for index in range(2):
        path = tmp_path / f"shard-{index:05d}.parquet"
        docs = [f"d{index}-{i}" for i in range(5)]
        texts = [f"Lung cancer cell line number {i}. The cell grew." for i in range(5)]
        pq.write_table(pa.table({"doc_id": docs, "text": texts, "title": docs, "year": [2020] * 5}, SHARD_SCHEMA), path)
        entries.append(ShardEntry(index, path.name, 5, file_sha256(path)))
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, ExportManifest("b-1", schema_fingerprint(SHARD_SCHEMA), entries))
    terms = tmp_path / "terms.tsv"
    terms.write_text("concept_id\tterm\nC1\tlung cancer\nC2\tcell line\n", encoding="utf-8")
    build_dictionary(terms, tmp_path / "dictionary")
    out = tmp_path / "out"
    for index in range(2):
        run_extract(shard_from_manifest(manifest, index), tmp_path / "dictionary", out, embeddings=False, workers=1)
    return manifest, out


def test_intact_results_verify(fetched) -> None:
    manifest, out = fetched
    shards = verify_results(read_manifest(manifest), out)
    assert [s.index for s in shards] == [0, 1]
    assert shards[0].result_sha256 == file_sha256(out / "result-0.json")
    assert shards[0].output("concepts") == out / "concepts-0.parquet" and shards[0].output("vectors") is None


def test_every_bad_shard_is_named_with_its_file_and_reason(fetched) -> None:
    manifest, out = fetched
    data = bytearray((out / "concepts-0.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "concepts-0.parquet").write_bytes(bytes(data))
    (out / "result-1.json").unlink()
    with pytest.raises(ResultVerificationError) as caught:
        verify_results(read_manifest(manifest), out)
    assert caught.value.indices == [0, 1]
    text = str(caught.value)
    assert "shard 0: concepts-0.parquet: sha256 mismatch" in text and "shard 1: result-1.json: missing" in text
    assert "re-fetch shards [0, 1]" in text


def test_a_result_for_another_input_or_row_count_is_refused(fetched) -> None:
    manifest, out = fetched
    entry = json.loads((out / "result-0.json").read_text())
    entry |= {"input_sha256": "f" * 64, "input_rows": 4}
    (out / "result-0.json").write_text(json.dumps(entry))
    good, bad = check_results(read_manifest(manifest), out)
    assert [s.index for s in good] == [1]
    reasons = [b.reason for b in bad if b.index == 0]
    assert any("input sha256 ffffffffffff" in r and "another shard" in r for r in reasons)
    assert "input rows 4 != manifest rows 5" in reasons


def test_embeddings_setting_is_enforced(fetched) -> None:
    manifest, out = fetched
    _, bad = check_results(read_manifest(manifest), out, embeddings=True)
    assert {(b.index, b.reason) for b in bad} == {(0, "has no vectors but embeddings are on"),
                                                  (1, "has no vectors but embeddings are on")}  # fmt: skip


def test_an_output_path_outside_the_result_folder_is_refused(fetched) -> None:
    manifest, out = fetched
    entry = json.loads((out / "result-1.json").read_text())
    entry["outputs"]["concepts"]["path"] = "../manifest.json"
    (out / "result-1.json").write_text(json.dumps(entry))
    _, bad = check_results(read_manifest(manifest), out)
    assert [(b.index, b.reason) for b in bad] == [(1, "output path leaves the result folder")]
