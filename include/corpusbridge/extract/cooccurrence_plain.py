"""The concept graph's map without numpy, for a process that keeps numpy out (`new_counter` picks it there). Same
rows, same bytes as extract/cooccurrence.py's vectorized counter (unit tests hold them equal). The payload process
no longer keeps numpy out: on a 25,000-document shard this counter took 3.0 s of CPU against 0.25 s vectorized and
~0.1 s to import numpy (bench/graph.py, RESULTS "Graphs")."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations, groupby
from pathlib import Path

import pyarrow as pa

from corpusbridge.extract.cooccurrence import (
    CONCEPT_DOCS_SCHEMA,
    PAIRS_SCHEMA,
    TOTAL_DOCS_KEY,
    TOTAL_SENTENCES_KEY,
    write_parquet,
)


@dataclass
class _Concept:
    docs: int = 0
    sentences: int = 0
    mentions: int = 0
    forms: Counter[str] = field(default_factory=Counter)


class PlainCooccurrenceCounter:
    """The same counts and bytes as `CooccurrenceCounter`, in plain Python: for a process without numpy; 8-13x its
    CPU (bench/graph.py)."""

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
        write_parquet(pairs_path, pairs)
        write_parquet(concepts_path, concepts)
        return pairs.num_rows, concepts.num_rows


def _label(forms: Counter[str]) -> str:
    """The most frequent form; ties go to the smallest string, so the label does not depend on row order."""
    return min(forms.items(), key=lambda item: (-item[1], item[0]))[0]
