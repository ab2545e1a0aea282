"""The reduce of the concept graph: each shard's partial counts become a pending delta inside the load's per-shard
transaction, written exactly when the shard's ledger row is (a retried or rerun shard is skipped with it, and a crash
rolls both back); `fold_pending` then adds every pending delta to concept_pairs / concept_docs / graph_totals in one
transaction, once per load run. A batch's shards touch mostly the same pairs, so one upsert per run instead of one
per shard is what keeps the graph from dominating the load (bench/RESULTS.md, Round trip). Between a shard's
commit and the fold (the rest of that load run, or until the next load after a crash) the graph lags the loaded rows.

Call it BEFORE the load deletes the previous rows of the shard's documents: their counts are subtracted first
(those rows read back by key and counted by the payload's own counter, extract/cooccurrence.py; document_concepts
always equals the graph), then the shard's are added: the payload's partial (`cooccurrence-I.parquet`,
`concept-docs-I.parquet`, COPYed straight into the pending tables), or for a result written before the payload
mapped the graph, its concept rows counted here by the same counter.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from corpusbridge.extract.cooccurrence import CooccurrenceCounter, read_totals
from corpusbridge.graph import statements
from corpusbridge.load.streams import copy_csv
from corpusbridge.load.verify import VerifiedShard

BATCH_ROWS = 65_536


class GraphMismatch(RuntimeError):
    """A shard's partial counts disagree with its concept rows; the message names the shard and the fix."""


@dataclass(frozen=True)
class GraphCounts:
    pairs_added: int  # partial rows merged (pairs touched by the shard)
    pairs_removed: int  # pair rows of replaced documents taken away
    docs_replaced: int  # documents that were in the graph before this shard


def load_shard_pairs(
    conn: psycopg.Connection, batch_id: str, shard: VerifiedShard, *, concept_docs: int
) -> GraphCounts:
    """One verified shard's graph delta, pending until `fold_pending`, in the caller's transaction (see the module
    docstring). `concept_docs`: the distinct (document, concept) pairs of the shard's concept rows, which the
    partial must count too."""
    params = {"batch": batch_id, "shard": shard.index}
    docs_replaced = _scalar(conn, statements.REPLACED_DOCS, params)
    removed = sentences_removed = 0
    if docs_replaced:  # new documents have no rows to take away
        removed, sentences_removed = _pend_counted(conn, _replaced_rows(conn, params), sign=-1)
    pairs_path, concepts_path = shard.output("cooccurrence"), shard.output("concept_docs")
    if pairs_path is not None and concepts_path is not None:
        _check_partial(batch_id, shard.index, concepts_path, concept_docs)
        added = _copy_partial(conn, pairs_path, concepts_path)
        docs_added, sentences_added = read_totals(concepts_path)
    else:  # a result from before the payload mapped the graph: its rows counted here, as the payload would
        rows_path = shard.output("concepts")
        assert rows_path is not None  # verification requires it
        rows = pq.read_table(rows_path, columns=list(COUNTED_COLUMNS))
        added, sentences_added = _pend_counted(conn, rows, sign=1)
        docs_added = shard.entry.input_rows
    totals = {"docs": docs_added - docs_replaced, "sentences": sentences_added - sentences_removed}
    conn.execute(statements.PEND_TOTALS, params | totals)
    return GraphCounts(pairs_added=added, pairs_removed=removed, docs_replaced=docs_replaced)


COUNTED_COLUMNS = {"doc_id": pa.string(), "concept_id": pa.string(), "sentence": pa.int32(), "matched": pa.string()}


def _replaced_rows(conn: psycopg.Connection, params: dict) -> pa.Table:
    """The previous concept rows of the shard's documents, read by key (COPY to CSV, parsed by Arrow), a document's
    rows together. One shard's worth: bounded by the export's `shard_rows`."""
    buffer = io.BytesIO()
    with conn.cursor().copy(statements.COPY_REPLACED_ROWS, params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    names = list(COUNTED_COLUMNS)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),  # a matched form may span a line break
        convert_options=pacsv.ConvertOptions(column_types=COUNTED_COLUMNS, strings_can_be_null=False),
    )


def _pend_counted(conn: psycopg.Connection, rows: pa.Table, *, sign: int) -> tuple[int, int]:
    """Count concept rows with the payload's own counter and append the counts, times `sign`, to the pending
    tables; returns (pair rows, sentences holding a concept). The SQL self-join that counted them before took
    ~4 s a shard of 25,000 documents (bench/RESULTS.md, reprocess)."""
    if not rows.num_rows:
        return 0, 0
    counter = CooccurrenceCounter()
    counter.add(rows)
    pairs, concepts = counter.tables(docs=0)
    pairs = _signed(pairs, ["docs", "sentences"], sign)
    concepts = _signed(concepts, ["docs", "sentences", "mentions"], sign)
    if sign < 0:  # a label is the form seen when a concept enters the graph, never taken away
        concepts = concepts.set_column(1, "label", pa.nulls(concepts.num_rows, pa.string()))
    copy_csv(conn, statements.COPY_PAIRS, pairs.to_batches(max_chunksize=BATCH_ROWS))
    copy_csv(conn, statements.COPY_CONCEPTS, concepts.to_batches(max_chunksize=BATCH_ROWS))
    return pairs.num_rows, counter.sentences


def _signed(table: pa.Table, columns: list[str], sign: int) -> pa.Table:
    for name in columns:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.multiply(table.column(name), sign))
    return table


def fold_pending(conn: psycopg.Connection) -> int:
    """Add every pending shard delta to the graph in one transaction and empty the pending tables; returns the
    shards folded (0: nothing pending, nothing done). Call it under the load's stage lock."""
    with conn.transaction():
        shards = _scalar(conn, statements.PENDING_SHARDS, {})
        if shards:
            _fold(conn, f"{shards} loaded shard(s)")
            conn.execute(statements.ADD_TOTALS)
            for statement in statements.CLEAR_PENDING:
                conn.execute(statement)
    return shards


def _scalar(conn: psycopg.Connection, query: object, params: dict) -> int:
    row = conn.execute(query, params).fetchone()  # type: ignore[call-overload]
    assert row is not None
    return int(row[0])


def _pend_rows(conn: psycopg.Connection, rows: psycopg.sql.Composable, params: dict, *, sign: int) -> int:
    """Pairs and per-concept counts of concept rows, counted in SQL, pending with `sign`; returns the pair rows."""
    pairs = conn.execute(statements.pend_pairs(rows, sign), params).rowcount
    conn.execute(statements.pend_concepts(rows, sign), params)
    return pairs


def _copy_partial(conn: psycopg.Connection, pairs: Path, concepts: Path) -> int:
    rows = _copy(conn, statements.COPY_PAIRS, pairs, ["concept_a", "concept_b", "docs", "sentences"])
    _copy(conn, statements.COPY_CONCEPTS, concepts, ["concept_id", "label", "docs", "sentences", "mentions"])
    return rows


def _copy(conn: psycopg.Connection, statement: str, path: Path, columns: list[str]) -> int:
    return copy_csv(conn, statement, pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns))


def _check_partial(batch_id: str, index: int, concepts: Path, rows: int) -> None:
    """The partial's (document, concept) count equals the concept rows' (`rows`): both came from one payload run.
    Read in Arrow before the delta is written: the documents per concept add up to those pairs."""
    partial = pc.sum(pq.read_table(concepts, columns=["docs"]).column("docs")).as_py() or 0
    if rows != partial:
        raise GraphMismatch(
            f"batch {batch_id} shard {index}: concept-docs-{index}.parquet counts {partial} (document, concept) "
            f"pairs, concepts-{index}.parquet holds {rows}; the files come from different runs: fetch the "
            "shard's results again (or recompute it)"
        )


def _fold(conn: psycopg.Connection, what: str) -> None:
    conn.execute(statements.FOLD_WORK_MEM)
    for statement in statements.FOLD_STAGING:
        conn.execute(statement)
    negative = _scalar(conn, statements.MERGE_PAIRS, {}) + _scalar(conn, statements.MERGE_CONCEPTS, {})
    if negative:
        raise GraphMismatch(
            f"{what}: the replaced documents take more pairs away than the graph holds, so the graph no longer "
            "equals document_concepts; rebuild it (`corpusbridge graph rebuild`) and load again"
        )
    conn.execute(statements.DROP_EMPTY_PAIRS)
    conn.execute(statements.DROP_EMPTY_CONCEPTS)


ALL_ROWS = psycopg.sql.SQL("SELECT doc_id, concept_id, sentence, matched FROM document_concepts")


def rebuild_graph(conn: psycopg.Connection) -> int:
    """Count the whole graph again from document_concepts (one transaction, under the load's lock so no shard
    loads meanwhile); the fix when GraphMismatch says the graph drifted. Returns the pair rows."""
    from corpusbridge.runs import Stage, stage_lock

    with stage_lock(conn, Stage.LOAD), conn.transaction():
        for statement in (*statements.CLEAR_GRAPH, *statements.CLEAR_PENDING):
            conn.execute(statement)
        pairs = _pend_rows(conn, ALL_ROWS, {}, sign=1)
        _fold(conn, "rebuild")
        for statement in statements.CLEAR_PENDING:
            conn.execute(statement)
        conn.execute(statements.RESET_TOTALS)
    return pairs
