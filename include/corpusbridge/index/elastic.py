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

from corpusbridge.index import statements
from corpusbridge.index.fulltext import Hit
from corpusbridge.index.summary import IndexSummary, index_run
from corpusbridge.runs import ProgressCallback, ProgressMeter, Stage

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
BODY_CHARS = statements.BODY_CHARS
# A rebuilt index is put behind the alias only if at most this share of documents was refused: a cluster that
# refuses everything (a broken mapping, a full disk) must not replace a working index with an empty one.
MAX_REBUILD_FAILURES = 0.01
# A refused document is sent again by each later run until it is accepted; after this many refusals of the same
# version it is rejected for good (index_rejects.permanent) until the document changes.
REJECT_ATTEMPTS = 5


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
    progress: ProgressCallback | None = None,
) -> IndexSummary:
    """Send clean documents changed since the last run (all of them when rebuilding, or when no index exists)."""
    meter = ProgressMeter(Stage.INDEX, progress, every_seconds=0)
    with index_run(conn, "elasticsearch", rebuild=rebuild) as summary:
        if not rebuild and not client.indices.exists_alias(name=alias):
            rebuild, summary.mode, summary.from_seq = True, "rebuild", 0  # nothing to update yet: build it
        target = _create_index(client, alias, summary.run_id) if rebuild else alias
        summary.index_name = target
        pages: list[tuple[LiteralString, Callable[[dict[str, Any]], dict[str, Any]]]] = [
            (statements.DOC_PAGE, lambda r: index_action(r, target))
        ]
        if not rebuild:  # a rebuilt index never had the removed documents, and sends every refused one again
            pages.append((statements.REMOVAL_PAGE, lambda r: delete_action(r["doc_id"], target)))
        for page_sql, to_action in pages:
            _send_pages(conn, client, summary, page_sql, to_action, batch_size, meter)
        if not rebuild:
            _retry_rejects(conn, client, summary, target, batch_size, meter)
        if rebuild:
            _check_rebuild(client, summary, target, alias)
            swap_alias(client, alias, target)
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
    meter: ProgressMeter,
) -> None:
    after = summary.from_seq
    while rows := _page(conn, page_sql, after, summary.to_seq, batch_size):
        outcome = send_bulk(client, (to_action(r) for r in rows))
        _record_outcome(conn, summary, rows, outcome)
        conn.commit()
        after = rows[-1]["clean_seq"]
        meter.advance(len(rows))


def _retry_rejects(
    conn: psycopg.Connection,
    client: Elasticsearch,
    summary: IndexSummary,
    target: str,
    batch_size: int,
    meter: ProgressMeter,
) -> None:
    """Send again what earlier runs had refused: the watermark moved past them, this is their way back in."""
    after = ""
    while rows := _page(conn, statements.RETRY_PAGE, after, summary.from_seq, batch_size):  # type: ignore[arg-type]
        actions = (delete_action(r["doc_id"], target) if r["removed"] else index_action(r, target) for r in rows)
        _record_outcome(conn, summary, rows, send_bulk(client, actions))
        conn.commit()
        after = rows[-1]["doc_id"]
        meter.advance(len(rows))


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
            statements.RECORD_REJECT,
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
    conn.execute(statements.FORGET_REJECTS, ([d for d in seqs if d not in failed],))
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
