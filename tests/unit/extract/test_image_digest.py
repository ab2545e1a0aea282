"""The payload records the container image it ran in ($CORPUSBRIDGE_IMAGE_DIGEST) in result-I.json, and nothing
else changes: the Parquet outputs are the same bytes in and outside a container, and every other key of the
result has the same value."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusbridge.export.manifest import ExportManifest, ShardEntry, write_manifest
from corpusbridge.export.schema import SHARD_SCHEMA, schema_fingerprint
from corpusbridge.extract.dictionary import build_dictionary
from corpusbridge.extract.program import run_extract, shard_from_manifest
from corpusbridge.extract.results import ResultEntry
from corpusbridge.hashing import file_sha256

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture
def shard(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "shard-00000.parquet"
    docs = [f"d{i}" for i in range(6)]
    texts = [f"Lung cancer cell line {i}. The cell grew." for i in range(6)]
    pq.write_table(pa.table({"doc_id": docs, "text": texts, "title": docs, "year": [2020] * 6}, SHARD_SCHEMA), path)
    manifest = tmp_path / "manifest.json"
    entry = ShardEntry(0, path.name, 6, file_sha256(path))
    write_manifest(manifest, ExportManifest("b-img", schema_fingerprint(SHARD_SCHEMA), [entry]))
    terms = tmp_path / "terms.tsv"
    terms.write_text("concept_id\tterm\nC1\tlung cancer\nC2\tcell line\n", encoding="utf-8")
    build_dictionary(terms, tmp_path / "dictionary")
    return manifest, tmp_path / "dictionary"


def _extract(shard: tuple[Path, Path], out: Path) -> dict:
    manifest, dictionary = shard
    run_extract(shard_from_manifest(manifest, 0), dictionary, out, embeddings=False, workers=1)
    return json.loads((out / "result-0.json").read_text())


def test_the_digest_lands_in_the_result_and_the_parquet_bytes_do_not_change(
    shard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CORPUSBRIDGE_IMAGE_DIGEST", raising=False)
    outside = _extract(shard, tmp_path / "workstation")
    monkeypatch.setenv("CORPUSBRIDGE_IMAGE_DIGEST", DIGEST)
    inside = _extract(shard, tmp_path / "image")

    assert outside["image_digest"] is None and inside["image_digest"] == DIGEST
    assert list(inside) == list(outside)  # the file's keys are sorted: one more key moves no other line
    assert {k: v for k, v in inside.items() if k != "image_digest"} == {
        k: v for k, v in outside.items() if k != "image_digest"
    }
    assert ResultEntry.read(tmp_path / "image" / "result-0.json").image_digest == DIGEST
    for name in ("concepts-0.parquet", "cooccurrence-0.parquet", "concept-docs-0.parquet"):
        assert (tmp_path / "image" / name).read_bytes() == (tmp_path / "workstation" / name).read_bytes()


def test_a_result_written_before_the_field_existed_still_reads(shard, tmp_path: Path) -> None:
    _extract(shard, tmp_path / "out")
    path = tmp_path / "out" / "result-0.json"
    older = json.loads(path.read_text())
    del older["image_digest"]
    path.write_text(json.dumps(older))
    assert ResultEntry.read(path).image_digest is None
