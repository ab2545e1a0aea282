"""Every SQL statement of the concept graph. The fold's tables are temporary and dropped at its commit."""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

from corpusbridge.load.statements import SHARD_DOC_IDS

# A shard's delta goes straight into the pending tables (graph_pending_*, migration 0630) in its load transaction.
COPY_PAIRS = "COPY graph_pending_pairs (concept_a, concept_b, docs, sentences) FROM STDIN (FORMAT csv)"
COPY_CONCEPTS = "COPY graph_pending_concepts (concept_id, label, docs, sentences, mentions) FROM STDIN (FORMAT csv)"

# The previous concept rows of the shard's documents: exactly what the load deletes next (whichever batch wrote
# them), read by key as those deletes are (SHARD_DOC_IDS), a document's rows together; counted in Python by the
# payload's own counter (graph/load.py).
COPY_REPLACED_ROWS = (
    "COPY (SELECT doc_id, concept_id, sentence, matched FROM document_concepts WHERE doc_id = ANY ("
    + SHARD_DOC_IDS
    + ") ORDER BY doc_id, start_offset, concept_id) TO STDOUT (FORMAT csv)"
)

# Pairs per document and per sentence from concept rows, as a brute force would count them; `sign` is 1 or -1.
_PAIRS = """
    WITH rows AS ({rows}),
    dc AS (SELECT DISTINCT doc_id, concept_id COLLATE "C" AS concept_id FROM rows),
    sc AS (SELECT DISTINCT doc_id, sentence, concept_id COLLATE "C" AS concept_id FROM rows),
    dp AS (SELECT a.concept_id AS a, b.concept_id AS b, count(*) AS n
           FROM dc a JOIN dc b ON a.doc_id = b.doc_id AND a.concept_id < b.concept_id GROUP BY 1, 2),
    sp AS (SELECT a.concept_id AS a, b.concept_id AS b, count(*) AS n
           FROM sc a JOIN sc b ON a.doc_id = b.doc_id AND a.sentence = b.sentence AND a.concept_id < b.concept_id
           GROUP BY 1, 2)
    INSERT INTO graph_pending_pairs (concept_a, concept_b, docs, sentences)
    SELECT dp.a, dp.b, {sign} * dp.n, {sign} * coalesce(sp.n, 0) FROM dp LEFT JOIN sp ON sp.a = dp.a AND sp.b = dp.b
"""
_CONCEPTS = """
    WITH rows AS ({rows})
    INSERT INTO graph_pending_concepts (concept_id, label, docs, sentences, mentions)
    SELECT concept_id, CASE WHEN {sign} > 0 THEN mode() WITHIN GROUP (ORDER BY lower(matched)) END,
           {sign} * count(DISTINCT doc_id), {sign} * count(DISTINCT (doc_id, sentence)), {sign} * count(*)
    FROM rows GROUP BY concept_id
"""


def pend_pairs(rows: sql.Composable, sign: int) -> sql.Composed:
    return sql.SQL(_PAIRS).format(rows=rows, sign=sql.Literal(sign))  # type: ignore[arg-type]


def pend_concepts(rows: sql.Composable, sign: int) -> sql.Composed:
    return sql.SQL(_CONCEPTS).format(rows=rows, sign=sql.Literal(sign))  # type: ignore[arg-type]


# Documents of the shard that were loaded before: they leave the document universe before they re-enter it.
REPLACED_DOCS = """
    SELECT count(*) FROM export_batch_documents d JOIN document_results r ON r.doc_id = d.doc_id
    WHERE d.batch_id = %(batch)s AND d.shard = %(shard)s
"""
# A shard's change of the document and sentence totals, appended with its delta.
PEND_TOTALS = """
    INSERT INTO graph_pending_totals (batch_id, shard, docs, sentences)
    VALUES (%(batch)s, %(shard)s, %(docs)s, %(sentences)s)
"""
PENDING_SHARDS = "SELECT count(*) FROM graph_pending_totals"

# The fold: every pending delta summed, then one MERGE of each touched pair and concept (PostgreSQL >= 17; a join,
# 0.74x the time of INSERT ... ON CONFLICT into an empty graph, 0.9x into a full one); each answers how many counts
# went below zero (the graph no longer equals document_concepts).
# The sums group every pending row by pair in one hash table: with the default 4 MB it spills to disk in batches.
FOLD_WORK_MEM = "SET LOCAL work_mem = '256MB'"
FOLD_STAGING: tuple[LiteralString, ...] = (
    "CREATE TEMP TABLE graph_fold_pairs ON COMMIT DROP AS SELECT concept_a, concept_b, sum(docs)::bigint AS docs, "
    "sum(sentences)::bigint AS sentences FROM graph_pending_pairs GROUP BY concept_a, concept_b",
    # A concept's label: the form of the shard that mentions it most (max(label) took the alphabetically last).
    "CREATE TEMP TABLE graph_fold_concepts ON COMMIT DROP AS SELECT concept_id, "
    "(array_agg(label ORDER BY mentions DESC, label) FILTER (WHERE label IS NOT NULL))[1] AS label, "
    "sum(docs)::bigint AS docs, sum(sentences)::bigint AS sentences, sum(mentions)::bigint AS mentions "
    "FROM graph_pending_concepts GROUP BY concept_id",
)
MERGE_PAIRS = """
    WITH merged AS (
        MERGE INTO concept_pairs p
        USING (SELECT * FROM graph_fold_pairs WHERE docs <> 0 OR sentences <> 0
               ORDER BY concept_a, concept_b) s  -- in key order the B-trees are written page by page
        ON p.concept_a = s.concept_a AND p.concept_b = s.concept_b
        WHEN MATCHED THEN UPDATE SET docs = p.docs + s.docs, sentences = p.sentences + s.sentences
        WHEN NOT MATCHED THEN INSERT (concept_a, concept_b, docs, sentences)
            VALUES (s.concept_a, s.concept_b, s.docs, s.sentences)
        RETURNING p.docs < 0 OR p.sentences < 0 AS negative
    )
    SELECT count(*) FILTER (WHERE negative) FROM merged
"""
DROP_EMPTY_PAIRS = """
    DELETE FROM concept_pairs p USING graph_fold_pairs s
    WHERE p.concept_a = s.concept_a AND p.concept_b = s.concept_b AND p.docs = 0
"""
MERGE_CONCEPTS = """
    WITH merged AS (
        MERGE INTO concept_docs c USING graph_fold_concepts s ON c.concept_id = s.concept_id
        WHEN MATCHED THEN UPDATE SET
            label = coalesce(c.label, s.label), docs = c.docs + s.docs, sentences = c.sentences + s.sentences,
            mentions = c.mentions + s.mentions
        WHEN NOT MATCHED THEN INSERT (concept_id, label, docs, sentences, mentions)
            VALUES (s.concept_id, s.label, s.docs, s.sentences, s.mentions)
        RETURNING c.docs < 0 OR c.sentences < 0 OR c.mentions < 0 AS negative
    )
    SELECT count(*) FILTER (WHERE negative) FROM merged
"""
DROP_EMPTY_CONCEPTS = """
    DELETE FROM concept_docs c USING graph_fold_concepts s WHERE c.concept_id = s.concept_id AND c.docs = 0
"""
# The migration inserted the one row.
ADD_TOTALS = """
    UPDATE graph_totals g SET docs = g.docs + t.docs, sentences = g.sentences + t.sentences,
        changes = g.changes + t.shards, updated_at = now()
    FROM (SELECT coalesce(sum(docs), 0) AS docs, coalesce(sum(sentences), 0) AS sentences, count(*) AS shards
          FROM graph_pending_totals) t
"""
CLEAR_PENDING: tuple[LiteralString, ...] = (
    "TRUNCATE graph_pending_pairs, graph_pending_concepts, graph_pending_totals",
)

# --- queries ------------------------------------------------------------------------------------------------------

TOTALS = "SELECT docs, sentences, changes FROM graph_totals"
CONCEPT = "SELECT concept_id, label, docs, sentences FROM concept_docs WHERE concept_id = %s"
# Both directions of the concept's edges, with the neighbour's own counts.
NEIGHBOURS = """
    SELECT e.other, n.label, e.docs, e.sentences, n.docs, n.sentences
    FROM (
        SELECT concept_b AS other, docs, sentences FROM concept_pairs WHERE concept_a = %(concept)s
        UNION ALL
        SELECT concept_a, docs, sentences FROM concept_pairs WHERE concept_b = %(concept)s
    ) e JOIN concept_docs n ON n.concept_id = e.other
    WHERE (CASE WHEN %(by)s = 'sentence' THEN e.sentences ELSE e.docs END) >= %(min_count)s
"""
NODES = "SELECT concept_id, label, docs, sentences FROM concept_docs WHERE docs >= %(min_docs)s ORDER BY concept_id"
EDGES = """
    SELECT p.concept_a, p.concept_b, p.docs, p.sentences, a.docs, a.sentences, b.docs, b.sentences
    FROM concept_pairs p
    JOIN concept_docs a ON a.concept_id = p.concept_a
    JOIN concept_docs b ON b.concept_id = p.concept_b
    WHERE a.docs >= %(min_docs)s AND b.docs >= %(min_docs)s
    ORDER BY p.concept_a, p.concept_b
"""
ALL_CONCEPT_ROWS = """
    SELECT doc_id, concept_id, start_offset, end_offset, sentence FROM document_concepts
    ORDER BY doc_id, start_offset, concept_id
"""

CLEAR_GRAPH: tuple[LiteralString, ...] = ("DELETE FROM concept_pairs", "DELETE FROM concept_docs")
RESET_TOTALS = """
    UPDATE graph_totals SET docs = (SELECT count(*) FROM document_results),
        sentences = (SELECT count(*) FROM (SELECT DISTINCT doc_id, sentence FROM document_concepts) s),
        changes = changes + 1, updated_at = now()
"""
