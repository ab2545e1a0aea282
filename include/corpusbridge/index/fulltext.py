"""PostgreSQL full-text search, the embedded default: a maintained `tsvector` + GIN index, ranked search.

The vector is maintained by the index stage rather than generated, so sanitizing stays a plain copy and
the index can be rebuilt (new weights, new text configuration) without rewriting clean rows.
Weights: title A, author names C, abstract B, body D; ranking adds 1 to documents whose title matches.
The SQL is in `corpusbridge.index.statements`.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from corpusbridge.index import statements
from corpusbridge.index.summary import IndexSummary, index_run
from corpusbridge.runs import ProgressCallback, ProgressMeter, Stage

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class Hit:
    """One ranked search result, the same shape for every backend."""

    doc_id: str
    title: str | None
    year: int | None
    score: float
    snippet: str


def index_postgres(
    conn: psycopg.Connection,
    *,
    rebuild: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
) -> IndexSummary:
    """Bring `search_vector` up to date for clean rows changed since the last run (all rows with rebuild)."""
    with index_run(conn, "postgres", rebuild=rebuild) as summary:
        summary.index_name = "clean_documents.search_vector"
        _index_pages(conn, summary, batch_size, rebuild, ProgressMeter(Stage.INDEX, progress, every_seconds=0))
        removed = conn.execute(statements.COUNT_REMOVALS, (summary.from_seq, summary.to_seq)).fetchone()[0]  # type: ignore[index]
        summary.docs_in += removed
        summary.docs_deleted += removed
    return summary


def _index_pages(
    conn: psycopg.Connection, summary: IndexSummary, batch_size: int, rebuild: bool, meter: ProgressMeter
) -> None:
    after = summary.from_seq
    while True:
        params = {"after": after, "upto": summary.to_seq, "limit": batch_size, "rebuild": rebuild}
        seen, last, written = conn.execute(statements.INDEX_PAGE, params).fetchone()  # type: ignore[misc]
        conn.commit()
        if not seen:
            return
        summary.docs_in += seen
        summary.docs_indexed += seen
        summary.rows_written += written
        after = last
        meter.advance(seen)


def search_postgres(conn: psycopg.Connection, query: str, *, limit: int = 10) -> list[Hit]:
    """Ranked hits for a web-search style query (`"exact phrase" -excluded or`); duplicates are hidden."""
    rows = conn.execute(statements.SEARCH, {"query": query, "limit": limit}).fetchall()
    conn.rollback()
    # Snippets are one line: paragraph breaks in the abstract would break the CLI's listing.
    return [
        Hit(doc_id, title, year, round(score, 6), " ".join(snippet.split()))
        for doc_id, title, year, score, snippet in rows
    ]
