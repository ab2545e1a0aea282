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

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


class CooccurrenceCounter:
    """Partial counts of one shard, fed with the concept tables in the order they are written.

    Vectorized (numpy sorts and Arrow group-bys): a Python loop over pairs cost more CPU than matching the text.
    Each table is reduced to its own pair and concept counts at once; `write` merges them.
    """

    def __init__(self) -> None:
        self.parts: list[pa.Table] = []
        self.concept_parts: list[pa.Table] = []
        self.form_parts: list[pa.Table] = []
        self.sentences = 0

    def add(self, table: pa.Table) -> None:
        """Count one table of concept rows (a document's rows are contiguous: the matcher writes them together)."""
        if not table.num_rows:
            return
        docs = _run_ids(table.column("doc_id"))
        names, codes = _sorted_codes(table.column("concept_id"))
        sentence = table.column("sentence").to_numpy().astype(np.int64)
        width = len(names)
        doc_groups, doc_concepts = _distinct(codes, docs)
        sentence_groups, sentence_concepts = _distinct(codes, docs, sentence)
        self.sentences += int(sentence_groups[-1]) + 1 if len(sentence_groups) else 0
        pair_docs, doc_counts = np.unique(_pairs(doc_groups, doc_concepts, width), return_counts=True)
        pair_sentences, sentence_counts = np.unique(
            _pairs(sentence_groups, sentence_concepts, width), return_counts=True
        )
        in_sentences = np.zeros(len(pair_docs), np.int64)
        in_sentences[np.searchsorted(pair_docs, pair_sentences)] = sentence_counts
        self.parts.append(
            pa.table(
                {
                    "concept_a": names.take(pa.array(pair_docs // width)),
                    "concept_b": names.take(pa.array(pair_docs % width)),
                    "docs": doc_counts.astype(np.int64),
                    "sentences": in_sentences,
                }
            )
        )
        self.concept_parts.append(
            pa.table(
                {
                    "concept_id": names,
                    "docs": np.bincount(doc_concepts, minlength=width).astype(np.int64),
                    "sentences": np.bincount(sentence_concepts, minlength=width).astype(np.int64),
                    "mentions": np.bincount(codes, minlength=width).astype(np.int64),
                }
            )
        )
        forms = pa.table({"concept_id": table.column("concept_id"), "form": pc.utf8_lower(table.column("matched"))})
        self.form_parts.append(forms.group_by(["concept_id", "form"]).aggregate([([], "count_all")]))

    def write(self, pairs_path: Path, concepts_path: Path, *, docs: int) -> tuple[int, int]:
        """Both files, rows sorted by id; returns (pair rows, concept rows)."""
        pairs = _summed(self.parts, PAIRS_SCHEMA, ["concept_a", "concept_b"], ["docs", "sentences"])
        concepts = _summed(self.concept_parts, _COUNTS_SCHEMA, ["concept_id"], ["docs", "sentences", "mentions"])
        labels = _labels(self.form_parts)
        metadata = {TOTAL_DOCS_KEY: str(docs).encode(), TOTAL_SENTENCES_KEY: str(self.sentences).encode()}
        concepts = pa.table(
            {
                "concept_id": concepts.column("concept_id"),
                "label": labels,
                "docs": concepts.column("docs"),
                "sentences": concepts.column("sentences"),
                "mentions": concepts.column("mentions"),
            },
            schema=CONCEPT_DOCS_SCHEMA.with_metadata(metadata),
        )
        _write(pairs_path, pairs)
        _write(concepts_path, concepts)
        return pairs.num_rows, concepts.num_rows


_COUNTS_SCHEMA = pa.schema([CONCEPT_DOCS_SCHEMA.field(n) for n in ("concept_id", "docs", "sentences", "mentions")])


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


def _distinct(codes: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (keys..., code) rows sorted; returns (group number of each row, its code)."""
    order = np.lexsort((codes, *reversed(keys)))
    columns = [key[order] for key in keys] + [codes[order]]
    keep = np.ones(len(order), bool)
    keep[1:] = np.any([c[1:] != c[:-1] for c in columns], axis=0)
    columns = [c[keep] for c in columns]
    new_group = np.ones(len(columns[0]), bool)
    new_group[1:] = np.any([c[1:] != c[:-1] for c in columns[:-1]], axis=0)
    return np.cumsum(new_group) - 1, columns[-1]


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


def _summed(parts: list[pa.Table], schema: pa.Schema, keys: list[str], values: list[str]) -> pa.Table:
    if not parts:
        return schema.empty_table()
    merged = pa.concat_tables(parts).group_by(keys).aggregate([(v, "sum") for v in values])
    merged = merged.rename_columns([name.removesuffix("_sum") for name in merged.column_names])
    return merged.sort_by([(k, "ascending") for k in keys]).select(schema.names).cast(schema)


def _labels(parts: list[pa.Table]) -> pa.Array:
    """Per concept (ascending), the most frequent form; ties go to the smallest, whatever the row order."""
    if not parts:
        return pa.array([], pa.string())
    forms = pa.concat_tables(parts).group_by(["concept_id", "form"]).aggregate([("count_all", "sum")])
    forms = forms.sort_by([("concept_id", "ascending"), ("count_all_sum", "descending"), ("form", "ascending")])
    concept = forms.column("concept_id").combine_chunks()
    first = np.ones(len(concept), bool)
    first[1:] = pc.not_equal(concept[1:], concept[:-1]).to_numpy(zero_copy_only=False)
    return forms.column("form").combine_chunks().filter(pa.array(first))


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
