"""The export's SQL: the selection of clean documents, and the batch rows written when a batch is complete.

The selection is composed with psycopg.sql from fixed fragments, one per filter the Selection sets; every value is
a bound parameter. Documents come in byte order of doc_id (COLLATE "C"), so the same documents give the same shards
on any server.
"""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg import sql
from psycopg.types.json import Jsonb

from corpusbridge.export.selection import Selection

# The text search configuration the full-text index builds search_vector with (index stage): a query must be parsed
# with the same one. Spelled here rather than imported, as the index modules are being reorganised.
TEXT_CONFIG: LiteralString = "english"

# The exported text: title, abstract and body, one blank line apart (the payload's concept offsets point into it;
# the title is also its own column, which the payload puts before the text for the vector: title counts twice there,
# as it weighs most in full-text search). NULL when the document has none of the three.
_TEXT: LiteralString = (
    "NULLIF(concat_ws(E'\\n\\n', NULLIF(t.title, ''), NULLIF(t.abstract, ''), NULLIF(t.full_text, '')), '')"
)
# The exported columns of a chunk of documents (stage.py puts them back in the chunk's order).
TEXTS: LiteralString = (
    f"SELECT t.doc_id, {_TEXT} AS text, t.title, t.year FROM clean_documents t WHERE t.doc_id = ANY(%s)"
)

# A document already processed at its current clean version, with this dictionary and model (None: any).
_PROCESSED: LiteralString = """EXISTS (
    SELECT 1 FROM document_results r
    WHERE r.doc_id = c.doc_id AND r.clean_seq >= c.clean_seq {dictionary} {model})"""
# A document in a batch still in flight (exported, not yet loaded) for this dictionary and model, at its current
# clean version; a batch made by this very selection is not in the way (a rerun may rewrite it).
_IN_FLIGHT: LiteralString = """EXISTS (
    SELECT 1 FROM export_batch_documents d JOIN export_batches b ON b.batch_id = d.batch_id
    WHERE d.doc_id = c.doc_id AND d.clean_seq >= c.clean_seq AND b.status = 'exported'
      AND b.selection <> %(selection)s {dictionary} {model})"""


def _filters(selection: Selection) -> list[sql.Composable]:
    """One condition per filter the selection sets; the names are bound by selection_params."""
    s = selection
    where: list[sql.Composable] = [sql.SQL("c.is_canonical")]
    optional: list[tuple[object, LiteralString]] = [
        (s.year_from, "c.year >= %(year_from)s"),
        (s.year_to, "c.year <= %(year_to)s"),
        (s.source, "c.source_format = %(source)s"),
        (s.doc_ids, "c.doc_id = ANY(%(doc_ids)s)"),
        (s.cleaned_from, "c.updated_at >= %(cleaned_from)s"),
        (s.cleaned_to, "c.updated_at < %(cleaned_to)s"),
        (s.query, f"c.search_vector @@ websearch_to_tsquery('{TEXT_CONFIG}', %(query)s)"),
    ]
    where += [sql.SQL(fragment) for value, fragment in optional if value is not None]
    if s.mode == "pending":
        where.append(sql.SQL("NOT ") + _versioned(_PROCESSED, s, "r"))
        where.append(sql.SQL("NOT ") + _versioned(_IN_FLIGHT, s, "b"))
    return where


def _versioned(template: LiteralString, selection: Selection, alias: LiteralString) -> sql.Composed:
    """Fill a template's {dictionary}/{model} slots: an equality when the selection names one, nothing for "any"."""
    dictionary = sql.SQL(f"AND {alias}.dictionary_version = %(dictionary_version)s")
    model = sql.SQL(f"AND {alias}.model_hash = %(model_hash)s")
    return sql.SQL(template).format(
        dictionary=dictionary if selection.dictionary_version is not None else sql.SQL(""),
        model=model if selection.model_hash is not None else sql.SQL(""),
    )


def selection_query(selection: Selection) -> sql.Composed:
    """The (doc_id, clean_seq) of a selection in export order; texts come by TEXTS, a chunk at a time.

    Only these narrow pairs are ever sorted: sorting the rows with their texts made PostgreSQL sort the whole batch's
    text (hash join + sort, gigabytes at 10^6 documents).
    """
    inner = 'SELECT c.doc_id, c.clean_seq FROM clean_documents c WHERE {} ORDER BY c.doc_id COLLATE "C"'
    query = sql.SQL(inner).format(sql.SQL(" AND ").join(_filters(selection)))
    if selection.limit is not None:
        query += sql.SQL(" LIMIT %(limit)s")
    return query


def selection_params(selection: Selection) -> dict[str, Any]:
    """The bound values of selection_query (only those its fragments name)."""
    params: dict[str, Any] = {
        k: v for k, v in selection.__dict__.items() if v is not None and k not in ("mode", "doc_ids")
    }
    if selection.doc_ids is not None:
        params["doc_ids"] = list(selection.doc_ids)
    if selection.mode == "pending":
        params["selection"] = Jsonb(selection.as_dict())
    return params


# A batch of the same selection (dictionary and model included) and shard targets that is still in flight: a rerun
# returns it.
FIND_IN_FLIGHT: LiteralString = """
    SELECT batch_id, shard_count, rows, bytes, manifest_path, manifest_sha256 FROM export_batches
    WHERE status = 'exported' AND selection = %(selection)s AND shard_rows = %(shard_rows)s
      AND shard_bytes = %(shard_bytes)s
    ORDER BY created_at DESC, batch_id
"""

# A batch id is derived from its content, so the same batch written again is the same row: it moves to the newest
# run and folder; an abandoned one comes back in flight, a loaded one stays loaded.
UPSERT_BATCH: LiteralString = """
    INSERT INTO export_batches (batch_id, run_id, selection, dictionary_version, model_hash, shard_count, rows, bytes,
        manifest_sha256, manifest_path, shard_rows, shard_bytes)
    VALUES (%(batch_id)s, %(run_id)s, %(selection)s, %(dictionary_version)s, %(model_hash)s, %(shard_count)s,
        %(rows)s, %(bytes)s, %(manifest_sha256)s, %(manifest_path)s, %(shard_rows)s, %(shard_bytes)s)
    ON CONFLICT (batch_id) DO UPDATE SET run_id = EXCLUDED.run_id, manifest_path = EXCLUDED.manifest_path,
        status = CASE WHEN export_batches.status = 'abandoned' THEN 'exported' ELSE export_batches.status END
    RETURNING (xmax = 0) AS inserted
"""

COPY_BATCH_DOCUMENTS: LiteralString = "COPY export_batch_documents (batch_id, doc_id, shard, clean_seq) FROM STDIN"

# Give up a batch that will never be loaded (its run was abandoned, its files lost): its documents become pending
# again. A batch with shards already loaded keeps them; only 'exported' batches can be abandoned.
ABANDON_BATCH: LiteralString = """
    UPDATE export_batches SET status = 'abandoned' WHERE batch_id = %s AND status = 'exported' RETURNING batch_id
"""
BATCH_STATUS: LiteralString = "SELECT status FROM export_batches WHERE batch_id = %s"
