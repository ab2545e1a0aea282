"""The document similarity graph into PostgreSQL exactly once, and what readers ask of it.

`load_neighbors` verifies every part of a kNN run (sha256 of each `neighbors-I.parquet` against its entry, the input
and k the same for all), then in ONE transaction deletes the previous graph, COPYs the new one and records the run
in `neighbor_graphs` as current: readers see the old graph or the new one, never a mix. A run whose result is the
current graph already loads nothing (the ledger row is found under a transaction-scoped lock, so two loaders cannot
both insert it).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq

from corpusbridge.graph.knn_files import NEIGHBORS_SCHEMA, PartEntry, part_entry_name, verified_part
from corpusbridge.load.ledger import Provenance
from corpusbridge.load.streams import copy_csv

# Any constant both loaders agree on: serialises the check-then-replace of the current graph.
_LOCK_KEY = 0x6B6E6E67
COPY_NEIGHBORS = "COPY knn_temp (doc_id, neighbor_id, rank, cosine) FROM STDIN (FORMAT csv)"
CURRENT = "SELECT graph_id, result_sha256, k FROM neighbor_graphs WHERE current"
# Ids of the result that name no loaded vector: a job run on other vectors, or vectors replaced since the export.
UNKNOWN_IDS = """
    SELECT t.id FROM (SELECT doc_id AS id FROM knn_temp UNION ALL SELECT neighbor_id FROM knn_temp) t
    WHERE NOT EXISTS (SELECT 1 FROM document_vectors v WHERE v.doc_id = t.id)
    LIMIT 5
"""


class NeighborsLoadError(RuntimeError):
    """Parts missing or not verifying; the message names them and the fix."""


@dataclass
class NeighborsLoad:
    graph_id: int
    loaded: bool  # False: this result is the current graph already (a rerun)
    docs: int
    edges: int
    result_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def result_sha256(folder: Path, parts: int) -> str:
    """One digest over the parts' entries, in index order: what the ledger keys a graph by."""
    digest = hashlib.sha256()
    for index in range(parts):
        digest.update((folder / part_entry_name(index)).read_bytes())
    return digest.hexdigest()


def current_graph_of(conn: psycopg.Connection, input_sha256: str, k: int, parts: int) -> int | None:
    """The current graph's id when it was computed from this input with this k and split (so computing it again
    would give the same graph); None otherwise."""
    row = conn.execute(
        "SELECT graph_id FROM neighbor_graphs WHERE current AND input_sha256 = %s AND k = %s AND parts = %s",
        (input_sha256, k, parts),
    ).fetchone()
    conn.commit()
    return None if row is None else int(row[0])


def load_neighbors(
    conn: psycopg.Connection,
    folder: Path,
    *,
    input_sha256: str,
    k: int,
    parts: int,
    provenance: Provenance,
    backend: str = "local",
) -> NeighborsLoad:
    """Load the verified parts in `folder` as the current graph; see the module docstring."""
    entries = _verified(folder, input_sha256, k, parts)
    digest = result_sha256(folder, parts)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        current = conn.execute(CURRENT).fetchone()
        if current is not None and current[1] == digest:
            edges = _scalar(conn, "SELECT count(*) FROM document_neighbors", {})
            return NeighborsLoad(int(current[0]), False, sum(e.stop - e.start for e in entries), edges, digest)
        graph_id = _record(conn, entries, digest, provenance, backend)
        edges = _replace(conn, folder, entries, graph_id)
    docs = sum(e.stop - e.start for e in entries)
    return NeighborsLoad(graph_id, True, docs, edges, digest)


def _verified(folder: Path, input_sha256: str, k: int, parts: int) -> list[PartEntry]:
    entries = [verified_part(folder, i, input_sha256, k, parts) for i in range(parts)]
    bad = [i for i, e in enumerate(entries) if e is None]
    if bad:
        raise NeighborsLoadError(
            f"{folder}: kNN parts {bad} are missing or do not verify (sha256, input or k differ); run the kNN job "
            "again (`corpusbridge graph neighbors`): it computes only those parts, then load"
        )
    return [e for e in entries if e is not None]


def _record(
    conn: psycopg.Connection, entries: list[PartEntry], digest: str, provenance: Provenance, backend: str
) -> int:
    first = entries[0]
    conn.execute("UPDATE neighbor_graphs SET current = false WHERE current")
    row = conn.execute(
        """INSERT INTO neighbor_graphs (result_sha256, input_sha256, k, parts, docs, edges, backend, device,
                                        code_version, run_label, image_digest, current)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true) RETURNING graph_id""",
        (digest, first.input_sha256, first.k, first.parts, sum(e.stop - e.start for e in entries),
         sum(e.rows for e in entries), backend, first.device, first.code_version, provenance.run_label,
         provenance.image_digest),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def _replace(conn: psycopg.Connection, folder: Path, entries: list[PartEntry], graph_id: int) -> int:
    conn.execute(
        "CREATE TEMP TABLE knn_temp (doc_id text, neighbor_id text, rank smallint, cosine real) ON COMMIT DROP"
    )
    columns = NEIGHBORS_SCHEMA.names  # the COPY's order, whatever order the file has
    parts = (pq.ParquetFile(folder / e.path).iter_batches(batch_size=65_536, columns=columns) for e in entries)
    copy_csv(conn, COPY_NEIGHBORS, (batch for part in parts for batch in part))
    unknown = [row[0] for row in conn.execute(UNKNOWN_IDS)]
    if unknown:
        raise NeighborsLoadError(
            f"{folder}: the kNN result names documents without a loaded vector (e.g. {', '.join(unknown)}): it was "
            f"not computed from the vectors loaded now; remove {folder} and run `corpusbridge graph neighbors` again "
            "(its parts verify, so a rerun would use them as they are)"
        )
    conn.execute("DELETE FROM document_neighbors")
    inserted = conn.execute(
        """INSERT INTO document_neighbors (doc_id, rank, neighbor_id, cosine, graph_id)
           SELECT doc_id, rank, neighbor_id, cosine, %s FROM knn_temp""",
        (graph_id,),
    ).rowcount
    listed = sum(e.rows for e in entries)
    if inserted != listed:  # the counts reconcile here as at every other hop
        raise NeighborsLoadError(
            f"{folder}: the parts list {listed} rows but hold {inserted}; nothing was loaded: remove {folder} and run "
            "`corpusbridge graph neighbors` again"
        )
    return inserted


def _scalar(conn: psycopg.Connection, query: str, params: dict) -> int:
    row = conn.execute(query, params).fetchone()  # type: ignore[call-overload]
    assert row is not None
    return int(row[0])
