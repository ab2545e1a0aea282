"""What readers ask of the document similarity graph: a document's exact neighbours, and how well HNSW finds them.

`similar` answers from the exact graph when it holds the document and at least `limit` neighbours, from the HNSW
index otherwise, and says which (`source`), so a user knows whether the answer is exact or approximate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg

from corpusbridge.load.lookup import Neighbour
from corpusbridge.load.lookup import similar as hnsw_similar

Source = Literal["knn_graph", "hnsw"]

GRAPH_OF = """
    SELECT n.neighbor_id, c.title, n.cosine
    FROM document_neighbors n LEFT JOIN clean_documents c ON c.doc_id = n.neighbor_id
    WHERE n.doc_id = %s ORDER BY n.rank LIMIT %s
"""
CURRENT_K = "SELECT graph_id, k FROM neighbor_graphs WHERE current"
SAMPLE = "SELECT doc_id FROM document_neighbors WHERE rank = 1 ORDER BY md5(doc_id) LIMIT %s"
EXACT_OF = "SELECT neighbor_id FROM document_neighbors WHERE doc_id = %s AND rank <= %s"


@dataclass(frozen=True)
class Similar:
    doc_id: str
    source: Source
    neighbours: list[Neighbour]
    graph_id: int | None = None


@dataclass(frozen=True)
class Recall:
    k: int
    docs: int  # documents sampled
    recall_at_k: float  # mean share of each document's exact k neighbours that HNSW returned
    graph_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def current_graph(conn: psycopg.Connection) -> tuple[int, int] | None:
    """(graph_id, k) of the loaded kNN graph, or None when none is loaded."""
    row = conn.execute(CURRENT_K).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def similar(conn: psycopg.Connection, doc_id: str, limit: int = 10) -> Similar:
    """The `limit` nearest documents: exact from the kNN graph when it can answer, else HNSW (approximate)."""
    graph = current_graph(conn)
    if graph is not None and limit <= graph[1]:
        rows = conn.execute(GRAPH_OF, (doc_id, limit)).fetchall()
        if rows:
            return Similar(doc_id, "knn_graph", [Neighbour(r[0], r[1], round(float(r[2]), 6)) for r in rows], graph[0])
    return Similar(doc_id, "hnsw", hnsw_similar(conn, doc_id, limit))


def hnsw_recall(conn: psycopg.Connection, *, k: int = 10, sample: int = 200) -> Recall:
    """Recall@k of the HNSW index against the exact graph on `sample` documents (a fixed pseudo-random set)."""
    graph = current_graph(conn)
    if graph is None:
        raise LookupError("no kNN graph is loaded: run `corpusbridge graph neighbors` first")
    if k > graph[1]:
        raise ValueError(f"k={k} is more than the loaded graph's k={graph[1]}; run the kNN job with --k {k}")
    docs = [r[0] for r in conn.execute(SAMPLE, (sample,)).fetchall()]
    hits = total = 0
    for doc_id in docs:
        exact = {r[0] for r in conn.execute(EXACT_OF, (doc_id, k)).fetchall()}
        found = {n.doc_id for n in hnsw_similar(conn, doc_id, k)}
        hits, total = hits + len(exact & found), total + len(exact)
    return Recall(k, len(docs), round(hits / total, 4) if total else 1.0, graph[0])
