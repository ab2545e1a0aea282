"""The reduce of the concept graph: each shard's partial counts become a pending delta inside the load's per-shard
transaction, written exactly when the shard's ledger row is (a retried or rerun shard is skipped with it, and a crash
rolls both back); `fold_pending` then adds every pending delta to concept_pairs / concept_docs / graph_totals in one
transaction, once per load run. A batch's shards touch mostly the same pairs, so one upsert per run instead of one
per shard is what keeps the graph from dominating the load (bench/RESULTS.md, Round trip). Between a shard's
commit and the fold (the rest of that load run, or until the next load after a crash) the graph lags the loaded rows.

Call it after the shard's concept rows are staged and BEFORE the load deletes the previous rows of the shard's
documents: their counts are subtracted first (read from document_concepts, which the graph always equals), then
the shard's are added. The adding side is the payload's partial (`cooccurrence-I.parquet`, `concept-docs-I.parquet`,
a few rows per shard); a result written before the payload mapped the graph is counted from its staged rows instead.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from corpusbridge.extract.cooccurrence import read_totals
from corpusbridge.graph import statements
from corpusbridge.load.verify import VerifiedShard

BATCH_ROWS = 65_536


class GraphMismatch(RuntimeError):
    """A shard's partial counts disagree with its concept rows; the message names the shard and the fix."""


@dataclass(frozen=True)
class GraphCounts:
    pairs_added: int  # partial rows merged (pairs touched by the shard)
    pairs_removed: int  # pair rows of replaced documents taken away
    docs_replaced: int  # documents that were in the graph before this shard


def load_shard_pairs(conn: psycopg.Connection, batch_id: str, shard: VerifiedShard) -> GraphCounts:
    """One verified shard's graph delta, pending until `fold_pending`, in the caller's transaction (see the module
    docstring)."""
    params = {"batch": batch_id, "shard": shard.index}
    for statement in statements.CREATE_STAGING:
        conn.execute(statement)
    docs_replaced = _scalar(conn, statements.REPLACED_DOCS, params)
    removed = sentences_removed = 0
    if docs_replaced:  # new documents have no rows to take away: skip three joins against all of document_concepts
        removed = _stage_rows(conn, statements.REPLACED_ROWS, params, sign=-1)
        sentences_removed = _scalar(conn, statements.sentences(statements.REPLACED_ROWS), params)
    pairs_path, concepts_path = shard.output("cooccurrence"), shard.output("concept_docs")
    if pairs_path is not None and concepts_path is not None:
        added = _copy_partial(conn, pairs_path, concepts_path)
        _check_partial(conn, batch_id, shard.index)
        docs_added, sentences_added = read_totals(concepts_path)
    else:
        added = _stage_rows(conn, statements.STAGED_ROWS, {}, sign=1)
        docs_added = shard.entry.input_rows
        sentences_added = _scalar(conn, statements.sentences(statements.STAGED_ROWS), {})
    conn.execute(statements.PEND_PAIRS)
    conn.execute(statements.PEND_CONCEPTS)
    totals = {"docs": docs_added - docs_replaced, "sentences": sentences_added - sentences_removed}
    conn.execute(statements.PEND_TOTALS, params | totals)
    return GraphCounts(pairs_added=added, pairs_removed=removed, docs_replaced=docs_replaced)


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


def _stage_rows(conn: psycopg.Connection, rows: psycopg.sql.Composable, params: dict, *, sign: int) -> int:
    """Pairs and per-concept counts of concept rows, counted in SQL, staged with `sign`; returns the pair rows."""
    pairs = conn.execute(statements.stage_pairs(rows, sign), params).rowcount
    conn.execute(statements.stage_concepts(rows, sign), params)
    return pairs


def _copy_partial(conn: psycopg.Connection, pairs: Path, concepts: Path) -> int:
    rows = _copy(conn, statements.COPY_PAIRS, pairs, ["concept_a", "concept_b", "docs", "sentences"])
    _copy(conn, statements.COPY_CONCEPTS, concepts, ["concept_id", "label", "docs", "sentences", "mentions"])
    return rows


def _copy(conn: psycopg.Connection, statement: str, path: Path, columns: list[str]) -> int:
    rows = 0
    options = pacsv.WriteOptions(include_header=False)
    with conn.cursor().copy(statement) as copy:  # type: ignore[arg-type]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, options)
            copy.write(buffer.getbuffer())
            rows += batch.num_rows
    return rows


def _check_partial(conn: psycopg.Connection, batch_id: str, index: int) -> None:
    """The partial's (document, concept) count equals the staged rows': both came from one payload run."""
    staged = _scalar(conn, statements.STAGED_CONCEPT_DOCS, {})
    partial = _scalar(conn, statements.PARTIAL_CONCEPT_DOCS, {})
    if staged != partial:
        raise GraphMismatch(
            f"batch {batch_id} shard {index}: concept-docs-{index}.parquet counts {partial} (document, concept) "
            f"pairs, concepts-{index}.parquet holds {staged}; the files come from different runs: fetch the "
            "shard's results again (or recompute it)"
        )


def _fold(conn: psycopg.Connection, what: str) -> None:
    for statement in statements.FOLD_STAGING:
        conn.execute(statement)
    negative = [row[0] for row in conn.execute(statements.MERGE_PAIRS)]
    negative += [row[0] for row in conn.execute(statements.MERGE_CONCEPTS)]
    if any(negative):
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
        for statement in (*statements.CLEAR_GRAPH, *statements.CLEAR_PENDING, *statements.CREATE_STAGING):
            conn.execute(statement)
        pairs = _stage_rows(conn, ALL_ROWS, {}, sign=1)
        conn.execute(statements.PEND_PAIRS)
        conn.execute(statements.PEND_CONCEPTS)
        _fold(conn, "rebuild")
        for statement in statements.CLEAR_PENDING:
            conn.execute(statement)
        conn.execute(statements.RESET_TOTALS)
    return pairs
