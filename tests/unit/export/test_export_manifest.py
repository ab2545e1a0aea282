"""The export manifest round-trips, and bad manifests fail with the file named."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from corpusbridge.export.manifest import (
    ExportManifest,
    ManifestError,
    ShardEntry,
    read_manifest,
    shard_path,
    write_manifest,
)
from corpusbridge.export.schema import SHARD_SCHEMA, missing_columns, schema_fingerprint


def test_manifest_round_trip_and_lookup(tmp_path: Path) -> None:
    manifest = ExportManifest(
        "b1",
        schema_fingerprint(SHARD_SCHEMA),
        [ShardEntry(1, "s1.parquet", 5, "ab"), ShardEntry(0, "s0.parquet", 3, "cd")],
    )
    path = tmp_path / "manifest.json"
    write_manifest(path, manifest)
    loaded = read_manifest(path)
    assert [s.index for s in loaded.shards] == [0, 1]
    assert loaded.rows == 8
    assert shard_path(path, loaded.shard(1)) == tmp_path / "s1.parquet"
    with pytest.raises(ManifestError, match="no shard with index 7"):
        loaded.shard(7)


def test_unreadable_manifest_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"manifest\.json: not an export manifest"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "absent.json")


def test_schema_fingerprint_and_required_columns() -> None:
    assert schema_fingerprint(SHARD_SCHEMA) == schema_fingerprint(SHARD_SCHEMA.with_metadata({"x": "y"}))
    assert schema_fingerprint(SHARD_SCHEMA) != schema_fingerprint(SHARD_SCHEMA.remove(3))
    assert missing_columns(SHARD_SCHEMA) == []
    assert missing_columns(pa.schema([("doc_id", pa.int64())])) == ["doc_id", "text"]
