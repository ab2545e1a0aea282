"""PostgreSQL full-text search, the embedded default: a maintained `tsvector` + GIN index, ranked search.

The vector is maintained by the index stage rather than generated, so sanitizing stays a plain copy and
the index can be rebuilt (new weights, new text configuration) without rewriting clean rows.
Weights: title A, author names C, abstract B, body D; ranking adds 1 to documents whose title matches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import LiteralString

import psycopg

from corpusbridge.index.state import IndexProgressCallback, IndexSummary, finish_run, report_progress, start_run

log = logging.getLogger(__name__)

TEXT_CONFIG = "english"
DEFAULT_BATCH = 5000
# tsvector values are capped at 1 MB; the first 100k characters of a body carry its vocabulary.
BODY_CHARS = 100_000

_VECTOR: LiteralString = f"""
    setweight(to_tsvector('{TEXT_CONFIG}', coalesce(c.title, '')), 'A')
    || setweight(to_tsvector('{TEXT_CONFIG}', coalesce(
        (SELECT string_agg(a->>'name', ' ') FROM jsonb_array_elements(c.authors) a), '')), 'C')
    || setweight(to_tsvector('{TEXT_CONFIG}', coalesce(c.abstract, '')), 'B')
    || setweight(to_tsvector('{TEXT_CONFIG}', left(coalesce(c.full_text, ''), {BODY_CHARS})), 'D')
"""

# One keyset page of changed rows; only rows whose vector is stale are written (a rebuild writes them all).
_INDEX_PAGE: LiteralString = f"""
    WITH page AS (
        SELECT doc_id, clean_seq FROM clean_documents
        WHERE clean_seq > %(after)s AND clean_seq <= %(upto)s ORDER BY clean_seq LIMIT %(limit)s
    ), written AS (
        UPDATE clean_documents c SET search_vector = {_VECTOR}, indexed_seq = c.clean_seq
        FROM page p WHERE c.doc_id = p.doc_id AND (%(rebuild)s OR c.indexed_seq IS DISTINCT FROM c.clean_seq)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM page), (SELECT max(clean_seq) FROM page), (SELECT count(*) FROM written)
"""

# Removed documents are already gone from the table, hence from search: they are only counted.
_COUNT_REMOVALS: LiteralString = """
    SELECT count(*) FROM clean_document_removals r
    WHERE r.clean_seq > %s AND r.clean_seq <= %s
      AND NOT EXISTS (SELECT 1 FROM clean_documents c WHERE c.doc_id = r.doc_id)
"""

_SEARCH: LiteralString = f"""
    WITH q AS (SELECT websearch_to_tsquery('{TEXT_CONFIG}', %(query)s) AS q),
    hits AS (
        SELECT c.doc_id, c.title, c.year, c.abstract,
               ts_rank_cd(c.search_vector, q.q, 32)
               + CASE WHEN ts_filter(c.search_vector, '{{a}}') @@ q.q THEN 1 ELSE 0 END AS score
        FROM clean_documents c, q
        WHERE c.search_vector @@ q.q AND c.canonical_id = c.doc_id
        ORDER BY score DESC, c.doc_id
        LIMIT %(limit)s
    )
    SELECT h.doc_id, h.title, h.year, h.score::float8,
           ts_headline('{TEXT_CONFIG}', coalesce(h.abstract, h.title, ''), q.q,
                       'MaxFragments=2, MinWords=8, MaxWords=25, StartSel=**, StopSel=**, FragmentDelimiter=" … "')
    FROM hits h, q ORDER BY h.score DESC, h.doc_id
"""


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
    progress: IndexProgressCallback | None = None,
) -> IndexSummary:
    """Bring `search_vector` up to date for clean rows changed since the last run (all rows with rebuild)."""
    summary = start_run(conn, "postgres", rebuild=rebuild)
    summary.index_name = "clean_documents.search_vector"
    try:
        _index_pages(conn, summary, batch_size, rebuild, progress)
        removed = conn.execute(_COUNT_REMOVALS, (summary.from_seq, summary.to_seq)).fetchone()[0]  # type: ignore[index]
        summary.docs_in += removed
        summary.docs_deleted += removed
    except BaseException as exc:
        finish_run(conn, summary, exc)
        raise
    finish_run(conn, summary)
    return summary


def _index_pages(
    conn: psycopg.Connection,
    summary: IndexSummary,
    batch_size: int,
    rebuild: bool,
    progress: IndexProgressCallback | None,
) -> None:
    after = summary.from_seq
    while True:
        params = {"after": after, "upto": summary.to_seq, "limit": batch_size, "rebuild": rebuild}
        seen, last, written = conn.execute(_INDEX_PAGE, params).fetchone()  # type: ignore[misc]
        conn.commit()
        if not seen:
            return
        summary.docs_in += seen
        summary.docs_indexed += seen
        summary.rows_written += written
        after = last
        report_progress(summary, progress)


def search_postgres(conn: psycopg.Connection, query: str, *, limit: int = 10) -> list[Hit]:
    """Ranked hits for a web-search style query (`"exact phrase" -excluded or`); duplicates are hidden."""
    rows = conn.execute(_SEARCH, {"query": query, "limit": limit}).fetchall()
    conn.rollback()
    # Snippets are one line: paragraph breaks in the abstract would break the CLI's listing.
    return [
        Hit(doc_id, title, year, round(score, 6), " ".join(snippet.split()))
        for doc_id, title, year, score, snippet in rows
    ]
