"""The map side of the concept graph: one shard's partial counts of concept pairs, computed where the concepts are.

For every document, each pair of distinct concepts (a < b in code-point order) counts once in `docs`; for every
sentence, each pair found in it counts once in `sentences`. Per concept: the documents and sentences it occurs in,
its mentions, and a label (its most frequent matched form in the shard, lower-cased). These counts add up across
shards and batches, which is what lets the workstation merge them (graph/load.py) without reading concept rows.

The shard's totals travel as Parquet key-value metadata of `concept-docs-I.parquet`: `docs` (documents read,
with or without concepts) and `sentences` (sentences holding at least one concept: the universe of sentence NPMI).
Rows are written sorted, so the bytes depend only on the concepts, never on the number of workers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations, groupby
from pathlib import Path

import pyarrow as pa

from corpusbridge.extract.results import parquet_writer

PAIRS_SCHEMA = pa.schema(
    [
        pa.field("concept_a", pa.string(), nullable=False),
        pa.field("concept_b", pa.string(), nullable=False),  # concept_a < concept_b (code points)
        pa.field("docs", pa.int64(), nullable=False),
        pa.field("sentences", pa.int64(), nullable=False),
    ]
)

CONCEPT_DOCS_SCHEMA = pa.schema(
    [
        pa.field("concept_id", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("docs", pa.int64(), nullable=False),
        pa.field("sentences", pa.int64(), nullable=False),
        pa.field("mentions", pa.int64(), nullable=False),
    ]
)

TOTAL_DOCS_KEY = b"corpusbridge.docs"
TOTAL_SENTENCES_KEY = b"corpusbridge.sentences"


def cooccurrence_name(index: int) -> str:
    return f"cooccurrence-{index}.parquet"


def concept_docs_name(index: int) -> str:
    return f"concept-docs-{index}.parquet"


@dataclass
class _Concept:
    docs: int = 0
    sentences: int = 0
    mentions: int = 0
    forms: Counter[str] = field(default_factory=Counter)


class CooccurrenceCounter:
    """Partial counts of one shard, fed with the concept tables in the order they are written."""

    def __init__(self) -> None:
        self.pairs: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.concepts: defaultdict[str, _Concept] = defaultdict(_Concept)
        self.sentences = 0

    def add(self, table: pa.Table) -> None:
        """Count one table of concept rows (a document's rows are contiguous: the matcher writes them together)."""
        if not table.num_rows:
            return
        rows = zip(
            table.column("doc_id").to_pylist(),
            table.column("concept_id").to_pylist(),
            table.column("sentence").to_pylist(),
            table.column("matched").to_pylist(),
            strict=True,
        )
        for _, group in groupby(rows, key=lambda row: row[0]):
            self._add_document([row[1:] for row in group])

    def _add_document(self, rows: list[tuple[str, int, str]]) -> None:
        by_sentence: defaultdict[int, set[str]] = defaultdict(set)
        for concept_id, sentence, matched in rows:
            by_sentence[sentence].add(concept_id)
            info = self.concepts[concept_id]
            info.mentions += 1
            info.forms[matched.lower()] += 1
        in_doc: set[str] = set().union(*by_sentence.values())
        for concept_id in in_doc:
            self.concepts[concept_id].docs += 1
        for pair in combinations(sorted(in_doc), 2):
            self.pairs[pair][0] += 1
        self.sentences += len(by_sentence)
        for found in by_sentence.values():
            for concept_id in found:
                self.concepts[concept_id].sentences += 1
            for pair in combinations(sorted(found), 2):
                self.pairs[pair][1] += 1

    def write(self, pairs_path: Path, concepts_path: Path, *, docs: int) -> tuple[int, int]:
        """Both files, rows sorted; returns (pair rows, concept rows)."""
        keys = sorted(self.pairs)
        pairs = pa.table(
            {
                "concept_a": [k[0] for k in keys],
                "concept_b": [k[1] for k in keys],
                "docs": [self.pairs[k][0] for k in keys],
                "sentences": [self.pairs[k][1] for k in keys],
            },
            schema=PAIRS_SCHEMA,
        )
        ids = sorted(self.concepts)
        infos = [self.concepts[c] for c in ids]
        metadata = {TOTAL_DOCS_KEY: str(docs).encode(), TOTAL_SENTENCES_KEY: str(self.sentences).encode()}
        schema = CONCEPT_DOCS_SCHEMA.with_metadata(metadata)
        concepts = pa.table(
            {
                "concept_id": ids,
                "label": [_label(info.forms) for info in infos],
                "docs": [info.docs for info in infos],
                "sentences": [info.sentences for info in infos],
                "mentions": [info.mentions for info in infos],
            },
            schema=schema,
        )
        _write(pairs_path, pairs)
        _write(concepts_path, concepts)
        return pairs.num_rows, concepts.num_rows


def _label(forms: Counter[str]) -> str:
    """The most frequent form; ties go to the smallest string, so the label does not depend on row order."""
    return min(forms.items(), key=lambda item: (-item[1], item[0]))[0]


def _write(path: Path, table: pa.Table) -> None:
    writer = parquet_writer(path, table.schema)
    try:
        writer.write_table(table)
    finally:
        writer.close()


def read_totals(path: Path) -> tuple[int, int]:
    """(documents, sentences with a concept) of a shard, from its concept-docs file's metadata."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    try:
        return int(metadata[TOTAL_DOCS_KEY]), int(metadata[TOTAL_SENTENCES_KEY])
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: no shard totals in its metadata; it was not written by the payload") from exc
