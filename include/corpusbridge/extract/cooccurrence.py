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

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from corpusbridge.extract.results import parquet_writer

# A process that keeps numpy out (sys.modules["numpy"] = None, as the concepts-only payload did until its map cost
# more than numpy's import) gets the plain counter; not even trying the import there keeps numpy off its import log.
if TYPE_CHECKING or sys.modules.get("numpy", False) is not None:
    import numpy as np
else:
    np = None

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


class CooccurrenceCounter:
    """Partial counts of one shard, fed with the concept tables in the order they are written.

    Vectorized: each table is reduced with numpy sorts to integer keys over shard-wide concept (and form) numbers,
    kept as arrays; `write` sums them once and sorts by name. A Python loop over pairs cost more CPU than matching
    the text, and Arrow's hash group-by over string keys more than these integer sorts (measured, bench/graph.py).
    Every sort is of one int64 key (a lexsort over two or three keys cost 3-5x more) and names become Arrow columns
    by `take`, never through Python objects.
    """

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}  # concept id -> shard-wide number, in order of arrival
        self.forms: dict[str, int] = {}  # lower-cased matched form -> number
        self.pair_keys: list[np.ndarray] = []  # (a << 32 | b) over shard-wide numbers, a's name < b's name
        self.pair_counts: list[np.ndarray] = []  # docs << 32 | sentences per key (one array to sort, not two)
        self.concept_counts: list[np.ndarray] = []  # rows (number, docs, sentences, mentions)
        self.form_keys: list[np.ndarray] = []  # (concept << 32 | form), one entry per mention
        self.sentences = 0

    def add(self, table: pa.Table) -> None:
        """Count one table of concept rows (a document's rows are contiguous: the matcher writes them together)."""
        if not table.num_rows:
            return
        docs = _run_ids(table.column("doc_id"))
        names, codes = _sorted_codes(table.column("concept_id"))
        numbers = _numbers(self.ids, names.to_pylist())
        sentence = table.column("sentence").to_numpy().astype(np.int64)
        width = len(names)
        doc_groups, doc_concepts = _distinct(codes, width, docs)
        sentence_groups, sentence_concepts = _distinct(codes, width, _sentence_groups(docs, sentence))
        self.sentences += int(sentence_groups[-1]) + 1 if len(sentence_groups) else 0
        pair_docs, doc_counts = np.unique(_pairs(doc_groups, doc_concepts, width), return_counts=True)
        in_sentences = np.zeros(len(pair_docs), np.int64)
        pair_sentences, counts = np.unique(_pairs(sentence_groups, sentence_concepts, width), return_counts=True)
        in_sentences[np.searchsorted(pair_docs, pair_sentences)] = counts
        self.pair_keys.append(numbers[pair_docs // width] << 32 | numbers[pair_docs % width])
        self.pair_counts.append(doc_counts.astype(np.int64) << 32 | in_sentences)
        per_concept = [np.bincount(c, minlength=width) for c in (doc_concepts, sentence_concepts, codes)]
        self.concept_counts.append(np.stack([numbers, *per_concept], axis=1))
        # Lower-cased after encoding: the distinct forms only; two forms that lower alike get one number.
        forms = pc.dictionary_encode(table.column("matched").combine_chunks())
        form_numbers = _numbers(self.forms, pc.utf8_lower(forms.dictionary).to_pylist())
        self.form_keys.append(numbers[codes] << 32 | form_numbers[forms.indices.to_numpy(zero_copy_only=False)])

    def write(self, pairs_path: Path, concepts_path: Path, *, docs: int) -> tuple[int, int]:
        """Both files, rows sorted by id; returns (pair rows, concept rows)."""
        pairs, concepts = self.tables(docs=docs)
        _write(pairs_path, pairs)
        _write(concepts_path, concepts)
        return pairs.num_rows, concepts.num_rows

    def tables(self, *, docs: int) -> tuple[pa.Table, pa.Table]:
        """(pairs, concept docs) as the files hold them; the workstation's load counts replaced rows with it too."""
        names = pa.array(list(self.ids), pa.string())
        rank = np.empty(len(names), np.int64)
        rank[pc.sort_indices(names).to_numpy()] = np.arange(len(names))  # byte order of UTF-8 = code-point order
        return self._pairs_table(names, rank), self._concepts_table(names, rank, docs)

    def _pairs_table(self, names: pa.Array, rank: np.ndarray) -> pa.Table:
        keys, counts = _summed_pairs(self.pair_keys, self.pair_counts)
        a, b = keys >> 32, keys & 0xFFFFFFFF
        order = np.argsort(rank[a] * len(names) + rank[b])  # by name of a, then of b (keys are distinct)
        columns = [names.take(a[order]), names.take(b[order]), counts[order, 0], counts[order, 1]]
        return pa.table(dict(zip(PAIRS_SCHEMA.names, columns, strict=True)), schema=PAIRS_SCHEMA)

    def _concepts_table(self, names: pa.Array, rank: np.ndarray, docs: int) -> pa.Table:
        stacked = np.concatenate(self.concept_counts) if self.concept_counts else np.empty((0, 4), np.int64)
        numbers, counts = _summed([stacked[:, 0]], [stacked[:, 1:]], 3)
        order = np.argsort(rank[numbers])
        metadata = {TOTAL_DOCS_KEY: str(docs).encode(), TOTAL_SENTENCES_KEY: str(self.sentences).encode()}
        labels = _labels(self.form_keys, self.forms, len(names))
        columns = [names.take(numbers[order]), labels[numbers[order]], *(counts[order, i] for i in range(3))]
        schema = CONCEPT_DOCS_SCHEMA.with_metadata(metadata)
        return pa.table(dict(zip(schema.names, columns, strict=True)), schema=schema)


def _numbers(known: dict[str, int], values: list[str]) -> np.ndarray:
    """Shard-wide numbers of `values`, new ones appended to `known`."""
    return np.array([known.setdefault(value, len(known)) for value in values], np.int64)


def _summed(keys: list[np.ndarray], counts: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct keys ascending, with their count rows summed."""
    if not keys:
        return np.empty(0, np.int64), np.empty((0, width), np.int64)
    distinct, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    stacked = np.concatenate(counts).astype(np.int64)
    total = np.zeros((len(distinct), width), np.int64)
    for column in range(width):
        total[:, column] = np.bincount(inverse, weights=stacked[:, column], minlength=len(distinct)).astype(np.int64)
    return distinct, total


def _summed_pairs(keys: list[np.ndarray], packed: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pair keys ascending, with their (docs, sentences) summed. The counts travel packed in one int64 (a
    shard's sentences per pair stay far below 2**32), so the sort moves one column: 0.6x the time of `_summed`."""
    if not keys:
        return np.empty(0, np.int64), np.empty((0, 2), np.int64)
    all_keys = np.concatenate(keys)
    order = np.argsort(all_keys)
    all_keys = all_keys[order]
    first = np.ones(len(all_keys), bool)
    first[1:] = all_keys[1:] != all_keys[:-1]
    starts = np.flatnonzero(first)
    totals = np.add.reduceat(np.concatenate(packed)[order], starts)
    return all_keys[starts], np.stack([totals >> 32, totals & 0xFFFFFFFF], axis=1)


def _labels(form_keys: list[np.ndarray], forms: dict[str, int], concepts: int) -> np.ndarray:
    """Per concept number, its most frequent form; ties go to the smallest, whatever the row order."""
    labels = np.empty(concepts, dtype=object)
    if not form_keys:
        return labels
    keys, counts = np.unique(np.concatenate(form_keys), return_counts=True)
    form_names = np.array(list(forms), dtype=object)
    form_rank = np.empty(len(form_names), np.int64)
    form_rank[np.argsort(form_names, kind="stable")] = np.arange(len(form_names))
    concept, form = keys >> 32, keys & 0xFFFFFFFF
    order = np.lexsort((form_rank[form], -counts, concept))
    first = np.ones(len(order), bool)
    first[1:] = concept[order][1:] != concept[order][:-1]
    labels[concept[order][first]] = form_names[form[order][first]]
    return labels


def _run_ids(column: pa.ChunkedArray) -> np.ndarray:
    """0, 0, 1, 1, 1, 2, ...: the document of each row (rows of a document are contiguous)."""
    values = column.combine_chunks()
    changed = pc.not_equal(values[1:], values[:-1]).to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.cumsum(changed)]).astype(np.int64)


def _sorted_codes(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The distinct ids in code-point order, and each row's index into them."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    order = pc.sort_indices(encoded.dictionary).to_numpy()  # byte order of UTF-8 = code-point order
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return encoded.dictionary.take(pa.array(order)), rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _sentence_groups(docs: np.ndarray, sentence: np.ndarray) -> np.ndarray:
    """0, 0, 1, ...: the number of each row's (document, sentence), numbered in that order."""
    if not len(docs):
        return docs
    key = docs * (int(sentence.max()) + 1) + sentence
    if np.all(key[1:] >= key[:-1]):  # the matcher's order (sentences ascend within a document): no sort needed
        return np.concatenate([[0], np.cumsum(key[1:] != key[:-1])]).astype(np.int64)
    return np.unique(key, return_inverse=True)[1].astype(np.int64)


def _distinct(codes: np.ndarray, width: int, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (group, code) rows sorted, `groups` numbered densely from 0 (every number has a row); returns the
    group of each distinct row and its code."""
    # np.sort, not np.unique: numpy 2's unique hashes first, which took 50x longer on these nearly sorted keys.
    keys = np.sort(groups * width + codes)
    keep = np.ones(len(keys), bool)
    keep[1:] = keys[1:] != keys[:-1]
    keys = keys[keep]
    return keys // width, keys % width


def _pairs(groups: np.ndarray, codes: np.ndarray, width: int) -> np.ndarray:
    """a * width + b for every two rows i < j of one group (codes ascending within a group, so a < b)."""
    size = len(groups)
    if not size:
        return np.empty(0, np.int64)
    ends = np.searchsorted(groups, groups, side="right")
    counts = ends - 1 - np.arange(size)
    first = np.repeat(np.arange(size), counts)
    offsets = np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
    return codes[first] * width + codes[first + 1 + offsets]


def new_counter() -> CooccurrenceCounter:
    """The vectorized counter, or where numpy is kept out the plain one (same rows, same bytes)."""
    if np is None:
        from corpusbridge.extract.cooccurrence_plain import PlainCooccurrenceCounter

        return PlainCooccurrenceCounter()  # type: ignore[return-value]
    return CooccurrenceCounter()


def write_parquet(path: Path, table: pa.Table) -> None:
    _write(path, table)


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
