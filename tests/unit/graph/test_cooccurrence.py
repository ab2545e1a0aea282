"""The payload's map of the concept graph: partial counts per document and per sentence, deterministic bytes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.extract.cooccurrence import CooccurrenceCounter, read_totals
from corpusbridge.extract.results import CONCEPTS_SCHEMA


def _table(rows: list[tuple[str, str, int, str]]) -> pa.Table:
    return pa.table(
        {
            "doc_id": [r[0] for r in rows],
            "concept_id": [r[1] for r in rows],
            "start": [0] * len(rows),
            "end": [1] * len(rows),
            "sentence": [r[2] for r in rows],
            "matched": [r[3] for r in rows],
        },
        schema=CONCEPTS_SCHEMA,
    )


ROWS = [
    # d1: B and A twice in sentence 0, C alone in sentence 1 -> doc pairs AB AC BC, sentence pair AB once
    ("d1", "B", 0, "Beta"), ("d1", "A", 0, "alpha"), ("d1", "A", 0, "Alpha"), ("d1", "C", 1, "gamma"),
    # d2: A and C in one sentence, A again later
    ("d2", "C", 0, "gamma"), ("d2", "A", 0, "alpha"), ("d2", "A", 3, "alpha"),
    # d3: one concept: no pair
    ("d3", "B", 2, "beta"),
]  # fmt: skip


def _write(counter: CooccurrenceCounter, folder: Path) -> tuple[Path, Path]:
    folder.mkdir()
    pairs, concepts = folder / "cooccurrence-0.parquet", folder / "concept-docs-0.parquet"
    counter.write(pairs, concepts, docs=5)
    return pairs, concepts


def test_pairs_count_once_per_document_and_per_sentence(tmp_path: Path) -> None:
    counter = CooccurrenceCounter()
    counter.add(_table(ROWS[:4]))
    counter.add(_table(ROWS[4:]))
    pairs, concepts = _write(counter, tmp_path / "out")

    assert pq.read_table(pairs).to_pylist() == [
        {"concept_a": "A", "concept_b": "B", "docs": 1, "sentences": 1},
        {"concept_a": "A", "concept_b": "C", "docs": 2, "sentences": 1},
        {"concept_a": "B", "concept_b": "C", "docs": 1, "sentences": 0},
    ]
    assert pq.read_table(concepts).to_pylist() == [
        {"concept_id": "A", "label": "alpha", "docs": 2, "sentences": 3, "mentions": 4},
        {"concept_id": "B", "label": "beta", "docs": 2, "sentences": 2, "mentions": 2},
        {"concept_id": "C", "label": "gamma", "docs": 2, "sentences": 2, "mentions": 2},
    ]
    # sentences with a concept: d1 {0, 1}, d2 {0, 3}, d3 {2}; 5 documents read (two without concepts)
    assert read_totals(concepts) == (5, 5)


def test_bytes_do_not_depend_on_how_the_rows_were_split(tmp_path: Path) -> None:
    whole, split = CooccurrenceCounter(), CooccurrenceCounter()
    whole.add(_table(ROWS))
    for cut in (ROWS[:4], ROWS[4:7], ROWS[7:], []):
        split.add(_table(cut))
    first, second = _write(whole, tmp_path / "a"), _write(split, tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_an_empty_shard_writes_empty_files_with_its_totals(tmp_path: Path) -> None:
    pairs, concepts = _write(CooccurrenceCounter(), tmp_path / "out")
    assert pq.read_table(pairs).num_rows == 0 and read_totals(concepts) == (5, 0)


def test_the_plain_counter_writes_the_same_bytes(tmp_path: Path) -> None:
    """The concepts-only payload process has no numpy and runs the plain counter: same files."""
    from corpusbridge.extract.cooccurrence_plain import PlainCooccurrenceCounter

    vectorized, plain = CooccurrenceCounter(), PlainCooccurrenceCounter()
    for counter in (vectorized, plain):
        counter.add(_table(ROWS[:4]))
        counter.add(_table(ROWS[4:]))
    first, second = _write(vectorized, tmp_path / "a"), _write(plain, tmp_path / "b")  # type: ignore[arg-type]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
