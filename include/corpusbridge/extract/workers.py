"""Row groups matched in order, in this process or in forked workers that share the loaded automaton.

Row groups are the unit of work; results come back in row-group order whatever the number of workers, which is
what keeps the output bytes independent of it. At most 2 x workers row groups are in flight (bounded memory).
"""

from __future__ import annotations

import multiprocessing
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.extract.matcher import Matcher
from corpusbridge.extract.results import CONCEPTS_SCHEMA
from corpusbridge.extract.sentences import SentenceSplitter, spacy_sentence_starts
from corpusbridge.processes import reset_inherited_signals

READ_BATCH_ROWS = 1024


class ExtractError(RuntimeError):
    """The shard cannot be processed as asked; the message names the file and what to do."""


@dataclass
class GroupResult:
    table: pa.Table
    docs: int
    without_text: int


class RowGroupWorker:
    """Per-process state; created in the parent, inherited by forked children."""

    def __init__(self, path: Path, matcher: Matcher, sentence_mode: str) -> None:
        self.path = path
        self.matcher = matcher
        self.splitter = SentenceSplitter() if sentence_mode == "fast" else None
        self._file: pq.ParquetFile | None = None

    def batches(self, group: int, columns: list[str]) -> Iterator[pa.RecordBatch]:
        if self._file is None:
            self._file = pq.ParquetFile(self.path)
        return self._file.iter_batches(READ_BATCH_ROWS, row_groups=[group], columns=columns, use_threads=False)

    def match_group(self, group: int) -> GroupResult:
        columns: dict[str, list[Any]] = {name: [] for name in CONCEPTS_SCHEMA.names}
        docs = without_text = 0
        for batch in self.batches(group, ["doc_id", "text"]):
            found: list[tuple[str, str, list[tuple[str, int, int]]]] = []
            for doc_id, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
                docs += 1
                if doc_id is None:
                    raise ExtractError(f"{self.path}: row group {group} has a null doc_id; fix the export")
                if not text:
                    without_text += 1
                    continue
                matches = self.matcher.locate(text)
                if matches:
                    found.append((doc_id, text, matches))
            for (doc_id, text, matches), sentences in zip(found, self._sentences(found), strict=True):
                _append(columns, doc_id, text, matches, sentences)
        return GroupResult(pa.table(columns, schema=CONCEPTS_SCHEMA), docs, without_text)

    def _sentences(self, found: list[tuple[str, str, list[tuple[str, int, int]]]]) -> Iterator[list[int]]:
        """Sentence index of every match, per document (the full spaCy pipeline runs batched via nlp.pipe)."""
        if self.splitter is not None:
            splitter = self.splitter
            return (splitter.indices(text, [m[1] for m in matches]) for _, text, matches in found)
        starts = spacy_sentence_starts(text for _, text, _ in found)
        return (
            [bisect_right(boundaries, m[1]) for m in matches]
            for (_, _, matches), boundaries in zip(found, starts, strict=True)
        )


def _append(
    columns: dict[str, list[Any]], doc_id: str, text: str, matches: list[tuple[str, int, int]], sentences: list[int]
) -> None:
    concepts, starts, ends = zip(*matches, strict=True)
    columns["doc_id"].extend([doc_id] * len(matches))
    columns["concept_id"].extend(concepts)
    columns["start"].extend(starts)
    columns["end"].extend(ends)
    columns["sentence"].extend(sentences)
    columns["matched"].extend([text[s:e] for _, s, e in matches])


_WORKER: RowGroupWorker | None = None


def _match_in_child(group: int) -> GroupResult:
    assert _WORKER is not None, "worker state is set before the pool forks"
    return _WORKER.match_group(group)


def ordered_results(worker: RowGroupWorker, groups: int, processes: int) -> Iterator[GroupResult]:
    """Row-group results in order; at most 2 x processes in flight, so memory stays bounded."""
    global _WORKER
    if processes <= 1 or groups <= 1:
        for group in range(groups):
            yield worker.match_group(group)
        return
    _WORKER = worker
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=reset_inherited_signals) as pool:
        pending: deque = deque()
        for group in range(groups):
            pending.append(pool.apply_async(_match_in_child, (group,)))
            if len(pending) >= 2 * processes:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()  # all work is done: let the workers exit on their own instead of being signalled
        pool.join()
    _WORKER = None
