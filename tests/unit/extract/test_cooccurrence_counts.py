"""The vectorized map of the concept graph against a brute-force count and the plain counter, on random shards
(the fixed cases live in tests/unit/graph/test_cooccurrence.py)."""

from __future__ import annotations

import random
from collections import Counter
from itertools import combinations, pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.extract.cooccurrence import CooccurrenceCounter, read_totals
from corpusbridge.extract.cooccurrence_plain import PlainCooccurrenceCounter
from corpusbridge.extract.results import CONCEPTS_SCHEMA

CONCEPTS = ["A", "B", "C10", "C2", "Zé", "b", "é1", "ω"]  # code-point order differs from case-insensitive order
FORMS = ["alpha", "Alpha", "ALPHA", "beta", "Éta", "éta", "x"]


def _shard(rng: random.Random, docs: int, ordered: bool) -> list[tuple[str, str, int, str]]:
    rows = []
    for doc in range(docs):
        found = [(rng.randrange(6), rng.choice(CONCEPTS), rng.choice(FORMS)) for _ in range(rng.randint(0, 12))]
        if ordered:  # the matcher's order: by offset, so sentences ascend within a document
            found.sort(key=lambda item: item[0])
        rows += [(f"d{doc:04d}", concept, sentence, form) for sentence, concept, form in found]
    return rows


def _table(rows: list[tuple[str, str, int, str]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    return pa.table(
        {"doc_id": columns[0], "concept_id": columns[1], "start": [0] * len(rows), "end": [1] * len(rows),
         "sentence": columns[2], "matched": columns[3]},
        schema=CONCEPTS_SCHEMA,
    )  # fmt: skip


def _brute_force(rows: list[tuple[str, str, int, str]]) -> tuple[list[dict], list[dict], int]:
    by_doc: dict[str, dict[int, set[str]]] = {}
    forms: dict[str, Counter[str]] = {}
    mentions: Counter[str] = Counter()
    for doc, concept, sentence, form in rows:
        by_doc.setdefault(doc, {}).setdefault(sentence, set()).add(concept)
        forms.setdefault(concept, Counter())[form.lower()] += 1
        mentions[concept] += 1
    pairs: dict[tuple[str, str], list[int]] = {}
    docs: Counter[str] = Counter()
    sentences: Counter[str] = Counter()
    for sentence_sets in by_doc.values():
        in_doc = set().union(*sentence_sets.values())
        docs.update(in_doc)
        for pair in combinations(sorted(in_doc), 2):
            pairs.setdefault(pair, [0, 0])[0] += 1
        for found in sentence_sets.values():
            sentences.update(found)
            for pair in combinations(sorted(found), 2):
                pairs[pair][1] += 1
    pair_rows = [
        {"concept_a": a, "concept_b": b, "docs": d, "sentences": s} for (a, b), (d, s) in sorted(pairs.items())
    ]
    concept_rows = [
        {"concept_id": c, "label": min(forms[c].items(), key=lambda item: (-item[1], item[0]))[0], "docs": docs[c],
         "sentences": sentences[c], "mentions": mentions[c]}
        for c in sorted(mentions)
    ]  # fmt: skip
    return pair_rows, concept_rows, sum(len(s) for s in by_doc.values())


def _files(counter: CooccurrenceCounter | PlainCooccurrenceCounter, tables: list[pa.Table], folder: Path) -> list[Path]:
    for table in tables:
        counter.add(table)
    folder.mkdir()
    paths = [folder / "cooccurrence-0.parquet", folder / "concept-docs-0.parquet"]
    counter.write(*paths, docs=10_000)
    return paths


def test_random_shards_count_as_brute_force_and_as_the_plain_counter(tmp_path: Path) -> None:
    rng = random.Random(16)
    for case in range(40):
        rows = _shard(rng, rng.randint(0, 60), ordered=case % 4 != 0)
        cuts = sorted({0, len(rows), *(rng.randint(0, len(rows)) for _ in range(3))})
        # Tables end between documents, as the program's do.
        cuts = [c for c in cuts if c in (0, len(rows)) or rows[c - 1][0] != rows[c][0]]
        tables = [_table(rows[a:b]) for a, b in pairwise(cuts)]
        vectorized = _files(CooccurrenceCounter(), tables, tmp_path / f"v{case}")
        plain = _files(PlainCooccurrenceCounter(), tables, tmp_path / f"p{case}")
        assert [p.read_bytes() for p in vectorized] == [p.read_bytes() for p in plain], case
        pairs, concepts, sentences = _brute_force(rows)
        assert pq.read_table(vectorized[0]).to_pylist() == pairs, case
        assert pq.read_table(vectorized[1]).to_pylist() == concepts, case
        assert read_totals(vectorized[1]) == (10_000, sentences), case
