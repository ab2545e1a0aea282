"""The SQL of the index stage: the per-backend watermark, PostgreSQL full-text indexing and search, and the pages
of changed documents sent to Elasticsearch. Values are bound as parameters; the text configuration is a constant.
"""

from __future__ import annotations

from typing import LiteralString

TEXT_CONFIG: LiteralString = "english"
# tsvector values are capped at 1 MB; the first 100k characters of a body carry its vocabulary. Elasticsearch
# gets the same prefix.
BODY_CHARS = 100_000

# --- the watermark -------------------------------------------------------------------------------------------------

WATERMARK: LiteralString = "SELECT coalesce((SELECT watermark FROM index_state WHERE backend = %s), 0)"
NEWEST_CHANGE: LiteralString = """
    SELECT greatest(coalesce((SELECT max(clean_seq) FROM clean_documents), 0),
                    coalesce((SELECT max(clean_seq) FROM clean_document_removals), 0))
"""
ADVANCE_WATERMARK: LiteralString = """
    INSERT INTO index_state (backend, watermark, index_name, docs_indexed) VALUES (%s, %s, %s, %s)
    ON CONFLICT (backend) DO UPDATE SET watermark = EXCLUDED.watermark,
        index_name = coalesce(EXCLUDED.index_name, index_state.index_name),
        docs_indexed = index_state.docs_indexed + EXCLUDED.docs_indexed, updated_at = now()
"""

# --- PostgreSQL full text ------------------------------------------------------------------------------------------

# Weights: title A, author names C, abstract B, body D.
_VECTOR: LiteralString = f"""
    setweight(to_tsvector('{TEXT_CONFIG}', coalesce(c.title, '')), 'A')
    || setweight(to_tsvector('{TEXT_CONFIG}', coalesce(
        (SELECT string_agg(a->>'name', ' ') FROM jsonb_array_elements(c.authors) a), '')), 'C')
    || setweight(to_tsvector('{TEXT_CONFIG}', coalesce(c.abstract, '')), 'B')
    || setweight(to_tsvector('{TEXT_CONFIG}', left(coalesce(c.full_text, ''), {BODY_CHARS})), 'D')
"""

# One keyset page of changed rows; only rows whose vector is stale are written (a rebuild writes them all).
INDEX_PAGE: LiteralString = f"""
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
COUNT_REMOVALS: LiteralString = """
    SELECT count(*) FROM clean_document_removals r
    WHERE r.clean_seq > %s AND r.clean_seq <= %s
      AND NOT EXISTS (SELECT 1 FROM clean_documents c WHERE c.doc_id = r.doc_id)
"""

# Ranking adds 1 to documents whose title matches; duplicates (not their group's canonical document) are hidden.
SEARCH: LiteralString = f"""
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

# --- Elasticsearch: pages of what to send, and what it refused -----------------------------------------------------

DOC_PAGE: LiteralString = """
    SELECT doc_id, canonical_id, source_format, title, abstract, left(full_text, %(body)s) AS full_text, authors,
           year, venue, language, clean_seq
    FROM clean_documents WHERE clean_seq > %(after)s AND clean_seq <= %(upto)s ORDER BY clean_seq LIMIT %(limit)s
"""
REMOVAL_PAGE: LiteralString = """
    SELECT r.doc_id, r.clean_seq FROM clean_document_removals r
    WHERE r.clean_seq > %(after)s AND r.clean_seq <= %(upto)s
      AND NOT EXISTS (SELECT 1 FROM clean_documents c WHERE c.doc_id = r.doc_id)
    ORDER BY r.clean_seq LIMIT %(limit)s
"""
# A refusal of the same version is one more attempt; a new version starts again from one. After `max` attempts
# the document is rejected for good (until it changes).
RECORD_REJECT: LiteralString = """
    INSERT INTO index_rejects (backend, doc_id, clean_seq, status, error_type, reason, run_id, permanent)
    VALUES ('elasticsearch', %(doc)s, %(seq)s, %(status)s, %(type)s, %(reason)s, %(run)s, 1 >= %(max)s)
    ON CONFLICT (backend, doc_id) DO UPDATE SET
        clean_seq = EXCLUDED.clean_seq, status = EXCLUDED.status, error_type = EXCLUDED.error_type,
        reason = EXCLUDED.reason, run_id = EXCLUDED.run_id, created_at = now(),
        attempts = CASE WHEN index_rejects.clean_seq = EXCLUDED.clean_seq THEN index_rejects.attempts + 1 ELSE 1 END,
        permanent = CASE WHEN index_rejects.clean_seq = EXCLUDED.clean_seq
                         THEN index_rejects.attempts + 1 >= %(max)s ELSE 1 >= %(max)s END
"""
FORGET_REJECTS: LiteralString = "DELETE FROM index_rejects WHERE backend = 'elasticsearch' AND doc_id = ANY(%s)"
# Refused documents whose current version is behind the watermark (newer versions go out with the changes);
# those no longer clean are sent as deletes. Keyset-paged by doc_id.
RETRY_PAGE: LiteralString = """
    SELECT r.doc_id, c.canonical_id, c.source_format, c.title, c.abstract, left(c.full_text, %(body)s) AS full_text,
           c.authors, c.year, c.venue, c.language, coalesce(c.clean_seq, r.clean_seq) AS clean_seq,
           c.doc_id IS NULL AS removed
    FROM index_rejects r LEFT JOIN clean_documents c ON c.doc_id = r.doc_id
    WHERE r.backend = 'elasticsearch' AND NOT r.permanent AND r.doc_id > %(after)s
      AND coalesce(c.clean_seq, 0) <= %(upto)s
    ORDER BY r.doc_id LIMIT %(limit)s
"""
