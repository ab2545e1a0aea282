"""Elasticsearch index writer and search, through the official client (imported only when used).

Writes go through `helpers.streaming_bulk`; every document the cluster refuses is recorded in
`index_rejects` with its status and reason (never dropped). A full rebuild fills a fresh index and then
swaps the alias in one atomic `_aliases` call, so searches never see a half-built index.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg.rows import dict_row

from corpusbridge.index.fulltext import Hit
from corpusbridge.index.state import IndexProgressCallback, IndexSummary, finish_run, report_progress, start_run

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

log = logging.getLogger(__name__)

ALIAS = "corpusbridge-documents"
DEFAULT_BATCH = 2000
URL_ENV = "ELASTICSEARCH_URL"
# 429 (queue full) items are re-sent up to 3 times, waiting 1 s, 2 s, 4 s: a busy cluster is not a failure.
RETRIES = 3
RETRY_BACKOFF_S = 1.0

# Explicit and strict: a field the mapping does not know is an error, not a silently guessed type.
MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "doc_id": {"type": "keyword"},
        "canonical_id": {"type": "keyword"},
        "is_canonical": {"type": "boolean"},
        "source_format": {"type": "keyword"},
        "title": {"type": "text", "analyzer": "english", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "abstract": {"type": "text", "analyzer": "english"},
        "full_text": {"type": "text", "analyzer": "english"},
        "authors": {"type": "text", "analyzer": "standard"},
        "orcids": {"type": "keyword"},
        "year": {"type": "short"},
        "venue": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
        "language": {"type": "keyword"},
        "clean_seq": {"type": "long"},
    },
}
SETTINGS: dict[str, Any] = {"index": {"number_of_shards": 1, "refresh_interval": "1s"}}
BODY_CHARS = 100_000
# A rebuilt index is put behind the alias only if at most this share of documents was refused: a cluster that
# refuses everything (a broken mapping, a full disk) must not replace a working index with an empty one.
MAX_REBUILD_FAILURES = 0.01
# A refused document is sent again by each later run until it is accepted; after this many refusals of the same
# version it is rejected for good (index_rejects.permanent) until the document changes.
REJECT_ATTEMPTS = 5

_DOC_PAGE: LiteralString = """
    SELECT doc_id, canonical_id, source_format, title, abstract, left(full_text, %(body)s) AS full_text, authors,
           year, venue, language, clean_seq
    FROM clean_documents WHERE clean_seq > %(after)s AND clean_seq <= %(upto)s ORDER BY clean_seq LIMIT %(limit)s
"""
_REMOVAL_PAGE: LiteralString = """
    SELECT r.doc_id, r.clean_seq FROM clean_document_removals r
    WHERE r.clean_seq > %(after)s AND r.clean_seq <= %(upto)s
      AND NOT EXISTS (SELECT 1 FROM clean_documents c WHERE c.doc_id = r.doc_id)
    ORDER BY r.clean_seq LIMIT %(limit)s
"""
# Refused documents whose current version is behind the watermark (newer versions go out with the changes);
# those no longer clean are sent as deletes. Kept here, next to its one use.
_RETRY_PAGE: LiteralString = """
    SELECT r.doc_id, c.canonical_id, c.source_format, c.title, c.abstract, left(c.full_text, %(body)s) AS full_text,
           c.authors, c.year, c.venue, c.language, coalesce(c.clean_seq, r.clean_seq) AS clean_seq,
           c.doc_id IS NULL AS removed
    FROM index_rejects r LEFT JOIN clean_documents c ON c.doc_id = r.doc_id
    WHERE r.backend = 'elasticsearch' AND NOT r.permanent AND r.doc_id > %(after)s
      AND coalesce(c.clean_seq, 0) <= %(upto)s
    ORDER BY r.doc_id LIMIT %(limit)s
"""


@dataclass(frozen=True)
class BulkFailure:
    doc_id: str
    op_type: str
    status: int | None
    error_type: str
    reason: str


@dataclass
class BulkOutcome:
    indexed: int = 0
    deleted: int = 0
    failures: list[BulkFailure] = field(default_factory=list)


def connect(url: str, **kwargs: Any) -> Elasticsearch:
    """A client for `url` (the CLI's `--es-url` / `$ELASTICSEARCH_URL`); Airflow builds its own from a Connection."""
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, **kwargs)


def document_source(row: dict[str, Any]) -> dict[str, Any]:
    """A clean row as the `_source` the mapping expects."""
    authors = row.get("authors") or []
    return {
        "doc_id": row["doc_id"],
        "canonical_id": row["canonical_id"],
        "is_canonical": row["canonical_id"] == row["doc_id"],
        "source_format": row["source_format"],
        "title": row["title"],
        "abstract": row["abstract"],
        "full_text": row["full_text"],
        "authors": [a["name"] for a in authors if a.get("name")],
        "orcids": [a["orcid"] for a in authors if a.get("orcid")],
        "year": row["year"],
        "venue": row["venue"],
        "language": row["language"],
        "clean_seq": row["clean_seq"],
    }


def index_action(row: dict[str, Any], index: str) -> dict[str, Any]:
    return {"_op_type": "index", "_index": index, "_id": row["doc_id"], "_source": document_source(row)}


def delete_action(doc_id: str, index: str) -> dict[str, Any]:
    return {"_op_type": "delete", "_index": index, "_id": doc_id}


def send_bulk(client: Elasticsearch, actions: Iterable[dict[str, Any]], *, chunk_size: int = 500) -> BulkOutcome:
    """Stream actions through `_bulk`; count successes and keep every per-document failure with its reason.

    A delete of a document the index never had (404 not_found) is a success: the end state is the wanted one.
    """
    from elasticsearch import helpers

    outcome = BulkOutcome()
    results = helpers.streaming_bulk(
        client,
        actions,
        chunk_size=chunk_size,
        max_retries=RETRIES,
        initial_backoff=RETRY_BACKOFF_S,
        raise_on_error=False,
        raise_on_exception=False,
    )
    for ok, item in results:
        op_type, info = next(iter(item.items()))
        if op_type == "delete" and (ok or info.get("status") == 404):
            outcome.deleted += 1
        elif ok:
            outcome.indexed += 1
        else:
            outcome.failures.append(_failure(op_type, info))
    return outcome


def _failure(op_type: str, info: dict[str, Any]) -> BulkFailure:
    error = info.get("error")
    if isinstance(error, dict):
        error_type, reason = error.get("type", "unknown"), error.get("reason") or str(error)
    else:  # the whole request failed: the helper reports the exception text for each action
        error_type, reason = "request_failed", str(error)
    return BulkFailure(str(info.get("_id")), op_type, info.get("status"), error_type, reason[:2000])


def index_elasticsearch(
    conn: psycopg.Connection,
    client: Elasticsearch,
    *,
    alias: str = ALIAS,
    rebuild: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: IndexProgressCallback | None = None,
) -> IndexSummary:
    """Send clean documents changed since the last run (all of them when rebuilding, or when no index exists)."""
    summary = start_run(conn, "elasticsearch", rebuild=rebuild)
    try:
        if not rebuild and not client.indices.exists_alias(name=alias):
            rebuild, summary.mode, summary.from_seq = True, "rebuild", 0  # nothing to update yet: build it
        target = _create_index(client, alias, summary.run_id) if rebuild else alias
        summary.index_name = target
        _send_pages(conn, client, summary, _DOC_PAGE, lambda r: index_action(r, target), batch_size, progress)
        if not rebuild:
            _send_pages(
                conn, client, summary, _REMOVAL_PAGE, lambda r: delete_action(r["doc_id"], target), batch_size, progress
            )
            _retry_rejects(conn, client, summary, target, batch_size, progress)
        if rebuild:
            _check_rebuild(client, summary, target, alias)
            swap_alias(client, alias, target)
    except BaseException as exc:
        finish_run(conn, summary, exc)
        raise
    finish_run(conn, summary)
    return summary


def _check_rebuild(client: Elasticsearch, summary: IndexSummary, new_index: str, alias: str) -> None:
    """Refuse to replace a serving index with a rebuild that more than 1 % of documents did not make it into."""
    if summary.docs_failed <= MAX_REBUILD_FAILURES * max(summary.docs_in, 1):
        return
    if not client.indices.exists_alias(name=alias):
        return  # the first build: nothing better to keep serving
    client.indices.delete(index=new_index)
    raise RuntimeError(
        f"rebuild of {new_index}: {summary.docs_failed} of {summary.docs_in} documents refused "
        f"({summary.failure_reasons}); the alias still points at the previous index. See index_rejects."
    )


def _create_index(client: Elasticsearch, alias: str, run_id: int) -> str:
    name = f"{alias}-{run_id:08d}"
    client.indices.create(index=name, mappings=MAPPING, settings=SETTINGS)
    return name


def swap_alias(client: Elasticsearch, alias: str, new_index: str) -> None:
    """Point `alias` at `new_index` only, atomically, then drop the indexes it pointed at before."""
    client.indices.refresh(index=new_index)
    old = sorted(client.indices.get_alias(name=alias).keys()) if client.indices.exists_alias(name=alias) else []
    steps: list[dict[str, Any]] = [{"remove": {"index": name, "alias": alias}} for name in old]
    steps.append({"add": {"index": new_index, "alias": alias}})
    client.indices.update_aliases(actions=steps)
    for name in old:
        if name != new_index:
            client.indices.delete(index=name)


def _send_pages(
    conn: psycopg.Connection,
    client: Elasticsearch,
    summary: IndexSummary,
    page_sql: LiteralString,
    to_action: Callable[[dict[str, Any]], dict[str, Any]],
    batch_size: int,
    progress: IndexProgressCallback | None,
) -> None:
    after = summary.from_seq
    while rows := _page(conn, page_sql, after, summary.to_seq, batch_size):
        outcome = send_bulk(client, (to_action(r) for r in rows))
        _record_outcome(conn, summary, rows, outcome)
        conn.commit()
        after = rows[-1]["clean_seq"]
        report_progress(summary, progress)


def _retry_rejects(
    conn: psycopg.Connection,
    client: Elasticsearch,
    summary: IndexSummary,
    target: str,
    batch_size: int,
    progress: IndexProgressCallback | None,
) -> None:
    """Send again what earlier runs had refused: the watermark moved past them, this is their way back in."""
    after = ""
    while rows := _page(conn, _RETRY_PAGE, after, summary.from_seq, batch_size):  # type: ignore[arg-type]
        actions = (delete_action(r["doc_id"], target) if r["removed"] else index_action(r, target) for r in rows)
        _record_outcome(conn, summary, rows, send_bulk(client, actions))
        conn.commit()
        after = rows[-1]["doc_id"]
        report_progress(summary, progress)


def _page(conn: psycopg.Connection, page_sql: LiteralString, after: int, upto: int, limit: int) -> list[dict]:
    params = {"after": after, "upto": upto, "limit": limit, "body": BODY_CHARS}
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(page_sql, params).fetchall()


def _record_outcome(conn: psycopg.Connection, summary: IndexSummary, rows: list[dict], outcome: BulkOutcome) -> None:
    """Failures go to index_rejects; documents that now made it leave it. Counts must cover every row."""
    seqs = {r["doc_id"]: r["clean_seq"] for r in rows}
    failed = {f.doc_id for f in outcome.failures}
    for f in outcome.failures:
        conn.execute(
            "INSERT INTO index_rejects (backend, doc_id, clean_seq, status, error_type, reason, run_id, permanent)"
            " VALUES ('elasticsearch', %(doc)s, %(seq)s, %(status)s, %(type)s, %(reason)s, %(run)s, 1 >= %(max)s)"
            " ON CONFLICT (backend, doc_id) DO UPDATE SET"
            " clean_seq = EXCLUDED.clean_seq, status = EXCLUDED.status, error_type = EXCLUDED.error_type,"
            " reason = EXCLUDED.reason, run_id = EXCLUDED.run_id, created_at = now(),"
            # a refusal of the same version is one more attempt; a new version starts again from one
            " attempts = CASE WHEN index_rejects.clean_seq = EXCLUDED.clean_seq THEN index_rejects.attempts + 1"
            " ELSE 1 END,"
            " permanent = CASE WHEN index_rejects.clean_seq = EXCLUDED.clean_seq"
            " THEN index_rejects.attempts + 1 >= %(max)s ELSE 1 >= %(max)s END",
            {
                "doc": f.doc_id,
                "seq": seqs.get(f.doc_id, 0),
                "status": f.status,
                "type": f.error_type,
                "reason": f.reason,
                "run": summary.run_id,
                "max": REJECT_ATTEMPTS,
            },
        )
    conn.execute(
        "DELETE FROM index_rejects WHERE backend = 'elasticsearch' AND doc_id = ANY(%s)",
        ([d for d in seqs if d not in failed],),
    )
    summary.docs_in += len(rows)
    summary.docs_indexed += outcome.indexed
    summary.docs_deleted += outcome.deleted
    summary.docs_failed += len(outcome.failures)
    summary.failure_reasons = dict(Counter(summary.failure_reasons) + Counter(f.error_type for f in outcome.failures))
    _check_reconciled(summary, rows, outcome)


def _check_reconciled(summary: IndexSummary, rows: list[dict], outcome: BulkOutcome) -> None:
    answered = outcome.indexed + outcome.deleted + len(outcome.failures)
    if answered != len(rows):
        raise RuntimeError(
            f"Elasticsearch answered for {answered} of {len(rows)} documents in run {summary.run_id}; "
            "the bulk response is incomplete, re-run `corpusbridge index --backend elasticsearch`"
        )


# websearch syntax (`a or b`) to simple_query_string syntax (`a | b`); quotes and `-` mean the same in both.
_OR = re.compile(r"\s+or\s+", re.I)


def search_query(query: str, limit: int) -> dict[str, Any]:
    """The request body: title boosted above abstract, like the PostgreSQL ranking; duplicates hidden."""
    query = _OR.sub(" | ", query)
    return {
        "size": limit,
        "query": {
            "bool": {
                "must": {
                    "simple_query_string": {
                        "query": query,
                        "fields": ["title^4", "authors^2", "abstract^2", "full_text"],
                        "default_operator": "and",
                    }
                },
                "filter": {"term": {"is_canonical": True}},
            }
        },
        "highlight": {
            "fields": {"abstract": {"number_of_fragments": 2, "fragment_size": 160}, "title": {}},
            "pre_tags": ["**"],
            "post_tags": ["**"],
        },
        "_source": ["doc_id", "title", "year", "abstract"],
    }


def search_elasticsearch(client: Elasticsearch, query: str, *, limit: int = 10, alias: str = ALIAS) -> list[Hit]:
    response = client.search(index=alias, **search_query(query, limit))
    return [_hit(h) for h in _hits(response)]


def _hits(response: Any) -> Iterator[dict[str, Any]]:
    yield from response["hits"]["hits"]


def _hit(raw: dict[str, Any]) -> Hit:
    source = raw.get("_source", {})
    fragments = raw.get("highlight", {})
    snippet = " … ".join(fragments.get("abstract") or fragments.get("title") or [])
    if not snippet:
        snippet = (source.get("abstract") or source.get("title") or "")[:200]
    return Hit(raw["_id"], source.get("title"), source.get("year"), float(raw.get("_score") or 0.0), snippet)
