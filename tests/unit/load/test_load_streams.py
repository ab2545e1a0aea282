"""What the load reads from a result's Parquet in Arrow before it writes a row."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.load.streams import read_contents


def _write(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_contents_name_every_document_once_and_count_distinct_document_concept_pairs(tmp_path: Path) -> None:
    concepts = _write(
        tmp_path / "concepts-0.parquet",
        {
            "doc_id": ["d2", "d1", "d1", "d1", "d2"],
            "concept_id": ["C1", "C1", "C1", "C2", "C1"],  # d1/C1 twice, d2/C1 twice: 3 distinct pairs
            "start": [0, 0, 9, 4, 7],
        },
    )
    vectors = _write(tmp_path / "vectors-0.parquet", {"doc_id": ["d1", "d3"]})  # d3: a vector, no concept

    contents = read_contents(concepts, vectors)

    assert contents.doc_ids == ["d1", "d2", "d3"]
    assert contents.concept_docs == 3
    assert read_contents(concepts, None).doc_ids == ["d1", "d2"]


def test_an_empty_concepts_file_names_no_document(tmp_path: Path) -> None:
    empty = pa.table({"doc_id": pa.array([], pa.string()), "concept_id": pa.array([], pa.string())})
    path = tmp_path / "concepts-0.parquet"
    pq.write_table(empty, path)
    contents = read_contents(path, None)
    assert (contents.doc_ids, contents.concept_docs) == ([], 0)
