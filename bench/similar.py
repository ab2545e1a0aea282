"""`similar` latency (HNSW) and recall@10 against exact search, at N vectors.

    python bench/similar.py --vectors 100000 [--queries 200] [--ef 40,100,200] [--clustered]

Vectors: seeded random unit vectors of dimension 384 (`--clustered`: points around 1,000 random centres, closer to
what sentence embeddings look like; uniform random vectors are the hard case for any graph index), COPYed into a
fresh database's `document_vectors` (the real table of migration 0300) with the HNSW index dropped, then the index is
built again with `CREATE INDEX` (timed; maintenance_work_mem recorded, and the index's size). Each query document's
neighbours come from `corpusbridge.load.lookup.similar` (what `corpusbridge similar` runs: its vector read back, then
ORDER BY `<=>` LIMIT 11 through the index, with a title join); the exact answer is numpy's brute force over the same
float32 vectors (cosine), checked against PostgreSQL's own exact scan (index disabled) on a few queries. Recall@10 =
|HNSW top 10 ∩ exact top 10| / 10, averaged; latency p50/p95 per call, after a warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "bench")]

from ingest import _fresh_db  # noqa: E402

from corpusbridge.db import embedded_uri  # noqa: E402

DIM = 384
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)


def make_vectors(n: int, clustered: bool, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if clustered:
        centres = rng.standard_normal((1000, DIM)).astype(np.float32)
        vectors = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    else:
        vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def doc_id(i: int) -> str:
    return f"vec:{i:09d}"


def copy_vectors(conn, vectors: np.ndarray) -> float:
    started = time.monotonic()
    head = struct.pack(">ihh", 4 + 4 * DIM, DIM, 0)
    with conn.cursor().copy(
        "COPY document_vectors (doc_id, embedding, batch_id, shard) FROM STDIN (FORMAT binary)"
    ) as copy:
        copy.write(_HEADER)
        big = vectors.astype(">f4")
        batch = b"bench"
        parts = []
        for i in range(len(vectors)):
            raw = doc_id(i).encode()
            parts.append(
                struct.pack(">hi", 4, len(raw)) + raw + head + big[i].tobytes()
                + struct.pack(">i", len(batch)) + batch + struct.pack(">ii", 4, 0)
            )  # fmt: skip
            if len(parts) == 10_000:
                copy.write(b"".join(parts))
                parts = []
        copy.write(b"".join(parts))
        copy.write(struct.pack(">h", -1))
    conn.commit()
    return time.monotonic() - started


def main() -> None:
    import psycopg

    from corpusbridge.load.lookup import similar

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", default="", help="also measure with these hnsw.ef_search values (e.g. 100,200)")
    parser.add_argument("--clustered", action="store_true")
    parser.add_argument("--maintenance-work-mem", default="1GB")
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="cb-similar-"))
    scratch.mkdir(parents=True, exist_ok=True)
    server = embedded_uri(scratch / "pgdata")
    name = f"bench_similar_{args.vectors}"
    uri = _fresh_db(server, name)
    vectors = make_vectors(args.vectors, args.clustered)
    out: dict = {"vectors": args.vectors, "clustered": args.clustered, "load_average_start": os.getloadavg()}
    with psycopg.connect(uri) as conn:
        conn.execute("DROP INDEX document_vectors_hnsw")
        out["copy_s"] = round(copy_vectors(conn, vectors), 2)
        conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (args.maintenance_work_mem,))
        out["maintenance_work_mem"] = conn.execute("SHOW maintenance_work_mem").fetchone()[0]
        out["max_parallel_maintenance_workers"] = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()[0]
        conn.commit()
        started = time.monotonic()
        conn.execute("CREATE INDEX document_vectors_hnsw ON document_vectors USING hnsw (embedding vector_cosine_ops)")
        conn.commit()
        out["hnsw_build_s"] = round(time.monotonic() - started, 2)
        out["hnsw_bytes"] = conn.execute("SELECT pg_relation_size('document_vectors_hnsw')").fetchone()[0]
        out["table_total_bytes"] = conn.execute("SELECT pg_total_relation_size('document_vectors')").fetchone()[0]
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE document_vectors")
        conn.autocommit = False
        rng = np.random.default_rng(17)
        picks = rng.choice(args.vectors, args.queries, replace=False)
        # exact top 10 (excluding the query itself), numpy brute force on the same float32 vectors
        exact = {}
        for q in picks:
            scores = vectors @ vectors[q]
            scores[q] = -2.0
            top = np.argpartition(-scores, 10)[:10]
            exact[int(q)] = {doc_id(int(i)) for i in top}
        # cross-check numpy against PostgreSQL's own exact scan on 5 queries
        agree = 0
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            for q in picks[:5]:
                rows = conn.execute(
                    "SELECT doc_id FROM document_vectors WHERE doc_id <> %s "
                    "ORDER BY embedding <=> (SELECT embedding FROM document_vectors WHERE doc_id = %s) LIMIT 10",
                    (doc_id(int(q)), doc_id(int(q))),
                ).fetchall()
                agree += len({r[0] for r in rows} & exact[int(q)])
        out["numpy_vs_pg_exact_agreement"] = agree / 50
        started = time.monotonic()
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute(
                "SELECT doc_id FROM document_vectors ORDER BY embedding <=> "
                "(SELECT embedding FROM document_vectors WHERE doc_id = %s) LIMIT 11",
                (doc_id(int(picks[0])),),
            ).fetchall()
        out["pg_exact_scan_ms"] = round(1000 * (time.monotonic() - started), 1)
        for q in picks[:20]:  # warm-up
            similar(conn, doc_id(int(q)))
        latencies, hits = [], 0
        for q in picks:
            started = time.monotonic()
            found = similar(conn, doc_id(int(q)))
            latencies.append(1000 * (time.monotonic() - started))
            hits += len({n.doc_id for n in found} & exact[int(q)])
        lat = np.array(latencies)
        out |= {"similar_p50_ms": round(float(np.percentile(lat, 50)), 2),
                "similar_p95_ms": round(float(np.percentile(lat, 95)), 2),
                "recall_at_10": round(hits / (10 * len(picks)), 4), "ef_search": 40}  # fmt: skip
        for ef in [int(x) for x in args.ef.split(",") if x]:
            latencies, hits = [], 0
            for q in picks:
                started = time.monotonic()
                with conn.transaction():
                    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
                    vector = conn.execute(
                        "SELECT embedding FROM document_vectors WHERE doc_id = %s", (doc_id(int(q)),)
                    ).fetchone()[0]
                    rows = conn.execute(
                        "SELECT doc_id FROM document_vectors ORDER BY embedding <=> %s::vector LIMIT 11", (vector,)
                    ).fetchall()
                latencies.append(1000 * (time.monotonic() - started))
                hits += len({r[0] for r in rows if r[0] != doc_id(int(q))} & exact[int(q)])
            lat = np.array(latencies)
            out[f"ef{ef}"] = {"p50_ms": round(float(np.percentile(lat, 50)), 2),
                              "p95_ms": round(float(np.percentile(lat, 95)), 2),
                              "recall_at_10": round(hits / (10 * len(picks)), 4)}  # fmt: skip
    out["load_average_end"] = os.getloadavg()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
