"""Every SQL statement of the concept graph. Staging tables are temporary and dropped at the load's commit."""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

CREATE_STAGING: tuple[LiteralString, ...] = (
    'CREATE TEMP TABLE graph_stage_pairs (concept_a text COLLATE "C" NOT NULL, concept_b text COLLATE "C" '
    "NOT NULL, docs bigint NOT NULL, sentences bigint NOT NULL) ON COMMIT DROP",
    'CREATE TEMP TABLE graph_stage_concepts (concept_id text COLLATE "C" NOT NULL, label text, docs bigint NOT NULL, '
    "sentences bigint NOT NULL, mentions bigint NOT NULL) ON COMMIT DROP",
)
COPY_PAIRS = "COPY graph_stage_pairs (concept_a, concept_b, docs, sentences) FROM STDIN (FORMAT csv)"
COPY_CONCEPTS = "COPY graph_stage_concepts (concept_id, label, docs, sentences, mentions) FROM STDIN (FORMAT csv)"

# Concept rows (doc_id, concept_id, sentence, matched) whose counts are added or taken away.
# The previous rows of the shard's documents: exactly what the load deletes next (whichever batch wrote them).
REPLACED_ROWS = sql.SQL(
    "SELECT c.doc_id, c.concept_id, c.sentence, c.matched FROM document_concepts c "
    "JOIN export_batch_documents d ON d.doc_id = c.doc_id WHERE d.batch_id = %(batch)s AND d.shard = %(shard)s"
)
# The shard's new rows, as the load staged them (for results written before the payload mapped the graph).
STAGED_ROWS = sql.SQL("SELECT doc_id, concept_id, sentence, matched FROM load_stage_concepts")

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
    INSERT INTO graph_stage_pairs (concept_a, concept_b, docs, sentences)
    SELECT dp.a, dp.b, {sign} * dp.n, {sign} * coalesce(sp.n, 0) FROM dp LEFT JOIN sp ON sp.a = dp.a AND sp.b = dp.b
"""
_CONCEPTS = """
    WITH rows AS ({rows})
    INSERT INTO graph_stage_concepts (concept_id, label, docs, sentences, mentions)
    SELECT concept_id, CASE WHEN {sign} > 0 THEN mode() WITHIN GROUP (ORDER BY lower(matched)) END,
           {sign} * count(DISTINCT doc_id), {sign} * count(DISTINCT (doc_id, sentence)), {sign} * count(*)
    FROM rows GROUP BY concept_id
"""
_SENTENCES = "WITH rows AS ({rows}) SELECT count(*) FROM (SELECT DISTINCT doc_id, sentence FROM rows) s"


def stage_pairs(rows: sql.Composable, sign: int) -> sql.Composed:
    return sql.SQL(_PAIRS).format(rows=rows, sign=sql.Literal(sign))  # type: ignore[arg-type]


def stage_concepts(rows: sql.Composable, sign: int) -> sql.Composed:
    return sql.SQL(_CONCEPTS).format(rows=rows, sign=sql.Literal(sign))  # type: ignore[arg-type]


def sentences(rows: sql.Composable) -> sql.Composed:
    return sql.SQL(_SENTENCES).format(rows=rows)  # type: ignore[arg-type]


# Documents of the shard that were loaded before: they leave the document universe before they re-enter it.
REPLACED_DOCS = """
    SELECT count(*) FROM export_batch_documents d JOIN document_results r ON r.doc_id = d.doc_id
    WHERE d.batch_id = %(batch)s AND d.shard = %(shard)s
"""
# The partial's concepts must be the staged concept rows' (same payload run): documents per concept add up.
STAGED_CONCEPT_DOCS = "SELECT count(*) FROM (SELECT DISTINCT doc_id, concept_id FROM load_stage_concepts) s"
PARTIAL_CONCEPT_DOCS = "SELECT coalesce(sum(docs), 0) FROM graph_stage_concepts WHERE docs > 0"  # not the subtracted

# A shard's delta, appended in its load transaction (graph_stage_* are the shard's temporary tables).
PEND_PAIRS = "INSERT INTO graph_pending_pairs SELECT concept_a, concept_b, docs, sentences FROM graph_stage_pairs"
PEND_CONCEPTS = """
    INSERT INTO graph_pending_concepts SELECT concept_id, label, docs, sentences, mentions FROM graph_stage_concepts
"""
PEND_TOTALS = """
    INSERT INTO graph_pending_totals (batch_id, shard, docs, sentences)
    VALUES (%(batch)s, %(shard)s, %(docs)s, %(sentences)s)
"""
PENDING_SHARDS = "SELECT count(*) FROM graph_pending_totals"

# The fold: every pending delta summed, then one upsert of each touched pair and concept.
FOLD_STAGING: tuple[LiteralString, ...] = (
    "CREATE TEMP TABLE graph_fold_pairs ON COMMIT DROP AS SELECT concept_a, concept_b, sum(docs)::bigint AS docs, "
    "sum(sentences)::bigint AS sentences FROM graph_pending_pairs GROUP BY concept_a, concept_b",
    "CREATE TEMP TABLE graph_fold_concepts ON COMMIT DROP AS SELECT concept_id, max(label) AS label, "
    "sum(docs)::bigint AS docs, sum(sentences)::bigint AS sentences, sum(mentions)::bigint AS mentions "
    "FROM graph_pending_concepts GROUP BY concept_id",
)
MERGE_PAIRS = """
    INSERT INTO concept_pairs (concept_a, concept_b, docs, sentences)
    SELECT concept_a, concept_b, docs, sentences FROM graph_fold_pairs WHERE docs <> 0 OR sentences <> 0
    ON CONFLICT (concept_a, concept_b) DO UPDATE SET
        docs = concept_pairs.docs + EXCLUDED.docs, sentences = concept_pairs.sentences + EXCLUDED.sentences
    RETURNING docs < 0 OR sentences < 0
"""
DROP_EMPTY_PAIRS = """
    DELETE FROM concept_pairs p USING graph_fold_pairs s
    WHERE p.concept_a = s.concept_a AND p.concept_b = s.concept_b AND p.docs = 0
"""
MERGE_CONCEPTS = """
    INSERT INTO concept_docs (concept_id, label, docs, sentences, mentions)
    SELECT concept_id, label, docs, sentences, mentions FROM graph_fold_concepts
    ON CONFLICT (concept_id) DO UPDATE SET
        label = coalesce(concept_docs.label, EXCLUDED.label), docs = concept_docs.docs + EXCLUDED.docs,
        sentences = concept_docs.sentences + EXCLUDED.sentences, mentions = concept_docs.mentions + EXCLUDED.mentions
    RETURNING docs < 0 OR sentences < 0 OR mentions < 0
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
