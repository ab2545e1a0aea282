"""The concept graph: the map's cost inside the payload, and the reduce into PostgreSQL vs its alternatives.

    .venv/bin/python bench/graph.py map [--docs 20000] [--per-words 50,15]
    .venv/bin/python bench/graph.py process [--docs 25000] [--per-words 50,15] [--manifest M --dictionary D]
    .venv/bin/python bench/graph.py reduce --docs 100000 [--design partials|rows|arrow]
    .venv/bin/python bench/graph.py knn --docs 20000
    .venv/bin/python bench/graph.py knn-job --docs 20000 [--parts 2]

`map` runs the real payload (concepts only, 2 processes) on one generated shard and reports the map's time
(`seconds.cooccurrence`: counting + writing the partials) as a fraction of the payload's total, measured in the same
run, at two concept densities. `process` runs the payload as a process (`python -m corpusbridge.extract
--no-embeddings`, 1 worker) with numpy kept out (the plain map; what that process did before) and let in (the
vectorized map; numpy's import included), on generated shards or on an exported one (`--manifest`, e.g.
bench/end_to_end.py's), and compares the two processes' output bytes. `reduce` (one design per process, so its peak
RSS is its own) builds synthetic shards of 50,000 documents (Zipf-drawn concepts, 10 sentences per document) and
merges them:
  partials  the chosen design: the payload's partial files COPYed and upserted per shard (graph/load.py)
  rows      the alternative: the shard's concept rows COPYed and the pairs counted by a self-join in PostgreSQL
  arrow     every partial concatenated and grouped by Arrow in this process (no database)
Each prints one JSON line: seconds, docs/s, client peak RSS, pairs in the graph, the machine's load average.
`knn-job` runs the document similarity graph end to end as `corpusbridge graph neighbors --backend local` does
(export the loaded vectors, the payload per part as subprocesses, the exactly-once load) beside the bare kernel on
the same vectors in the same process, and HNSW's recall@10 against the loaded graph (`corpusbridge graph recall`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

SHARD_DOCS = 50_000
CONCEPTS = 1_000  # --concepts


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# --- map ----------------------------------------------------------------------------------------------------------


def _words(rng: random.Random, count: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return sorted({"".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(count)})


def _map_shard(root: Path, docs: int, per_words: int, seed: int = 3) -> tuple[Path, Path]:
    """A shard of abstract-sized documents (~180 words, 9 sentences) with a term of a 1,000-term dictionary
    injected every `per_words` words, and the dictionary artifact."""
    from corpusbridge.export.manifest import ExportManifest, ShardEntry, write_manifest
    from corpusbridge.export.schema import SHARD_SCHEMA, schema_fingerprint
    from corpusbridge.extract.dictionary import build_dictionary
    from corpusbridge.hashing import file_sha256

    rng = random.Random(seed)
    vocabulary = _words(rng, 20_000)
    terms = sorted({" ".join(rng.sample(vocabulary, rng.randint(1, 3))) for _ in range(1_000)})
    weights = [1 / (rank + 1) for rank in range(len(terms))]
    texts = []
    for _ in range(docs):
        words = rng.choices(vocabulary, k=180)
        for slot in range(0, 180, per_words):
            words[slot] = rng.choices(terms, weights)[0]
        sentences = [" ".join(words[i : i + 20]).capitalize() + "." for i in range(0, 180, 20)]
        texts.append(" ".join(sentences))
    folder = root / f"shard-{per_words}"
    folder.mkdir()
    (folder / "terms.tsv").write_text("concept_id\tterm\n" + "".join(f"T{i}\t{t}\n" for i, t in enumerate(terms)))
    build_dictionary(folder / "terms.tsv", folder / "dictionary")
    table = pa.table(
        {"doc_id": [f"d{i:07d}" for i in range(docs)], "text": texts, "title": [None] * docs,
         "year": pa.array([2020] * docs, pa.int32())},
        schema=SHARD_SCHEMA,
    )  # fmt: skip
    shard = folder / "shard-00000.parquet"
    pq.write_table(table, shard, row_group_size=2048, compression="zstd")
    manifest = folder / "manifest.json"
    entry = ShardEntry(0, shard.name, docs, file_sha256(shard))
    write_manifest(manifest, ExportManifest("bench", schema_fingerprint(SHARD_SCHEMA), [entry]))
    return manifest, folder / "dictionary"


def bench_map(docs: int, densities: list[int]) -> None:
    """CPU seconds (robust on a shared machine): the payload in this process (1 worker, no fork, concepts only) vs
    the map over the very tables it fed, row group by row group."""
    from corpusbridge.extract.cooccurrence import CooccurrenceCounter
    from corpusbridge.extract.cooccurrence_plain import PlainCooccurrenceCounter
    from corpusbridge.extract.program import run_extract, shard_from_manifest

    with tempfile.TemporaryDirectory(prefix="bench-graph-map-") as tmp:
        for per_words in densities:
            manifest, dictionary = _map_shard(Path(tmp), docs, per_words)
            payload, mapped, plain_cpu = [], [], []
            for attempt in range(3):
                out = Path(tmp) / f"out-{per_words}-{attempt}"
                started = time.process_time()
                run_extract(shard_from_manifest(manifest, 0), dictionary, out, embeddings=False, workers=1)
                payload.append(time.process_time() - started)
                concepts = pq.ParquetFile(out / "concepts-0.parquet")
                started = time.process_time()
                counter = CooccurrenceCounter()
                for group in range(concepts.num_row_groups):
                    counter.add(concepts.read_row_group(group))
                counter.write(out / "p.parquet", out / "c.parquet", docs=docs)
                mapped.append(time.process_time() - started)
                started = time.process_time()
                plain = PlainCooccurrenceCounter()
                for group in range(concepts.num_row_groups):
                    plain.add(concepts.read_row_group(group))
                plain.write(out / "p2.parquet", out / "c2.parquet", docs=docs)
                plain_cpu.append(time.process_time() - started)
            print(json.dumps({
                "bench": "map", "docs": docs, "term_every_words": per_words,
                "concept_rows": concepts.metadata.num_rows, "pair_rows": pq.read_metadata(out / "p.parquet").num_rows,
                "payload_cpu_s": round(min(payload), 3), "map_cpu_s": round(min(mapped), 3),
                "map_fraction": round(min(mapped) / min(payload), 4), "plain_map_cpu_s": round(min(plain_cpu), 3),
                "plain_map_fraction": round(min(plain_cpu) / min(payload), 4), "load_average": _load(),
            }))  # fmt: skip


# The payload process as `python -m corpusbridge.extract` runs it, with numpy kept out (as its __main__ did until
# the map made that a loss) or let in.
_PROCESS = """
import runpy, sys
if sys.argv[1] == "blocked":
    sys.modules["numpy"] = None
sys.argv = ["corpusbridge.extract", *sys.argv[2:]]
runpy.run_module("corpusbridge.extract", run_name="__main__", alter_sys=True)
"""


def _payload_process(numpy: str, manifest: Path, dictionary: Path, out: Path) -> tuple[float, dict]:
    """(CPU seconds of the process, its JSON summary)."""
    import shutil
    import subprocess

    shutil.rmtree(out, ignore_errors=True)  # a completed index would be a no-op
    command = [sys.executable, "-c", _PROCESS, numpy, "--manifest", str(manifest), "--index", "0"]
    command += ["--dictionary", str(dictionary), "--out", str(out), "--no-embeddings", "--workers", "1", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode:
        raise RuntimeError(f"payload failed: {finished.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return cpu, json.loads(finished.stdout)


def _map_cpu(out: Path, repeats: int = 3) -> float:
    """CPU seconds of the vectorized map over the payload's own concept rows, row group by row group (best of 3):
    the map's share of the payload without the wall-clock noise of `seconds.cooccurrence`."""
    from corpusbridge.extract.cooccurrence import CooccurrenceCounter

    concepts = pq.ParquetFile(out / "concepts-0.parquet")
    tables = [concepts.read_row_group(group) for group in range(concepts.num_row_groups)]
    spent = []
    for _ in range(repeats):
        started = time.process_time()
        counter = CooccurrenceCounter()
        for table in tables:
            counter.add(table)
        counter.write(out / "p.parquet", out / "c.parquet", docs=0)
        spent.append(time.process_time() - started)
    return round(min(spent), 4)


def bench_process(shards: list[tuple[str, Path, Path]], repeats: int = 3) -> None:
    import hashlib

    for label, manifest, dictionary in shards:
        figures: dict = {"bench": "process", "shard": label, "load_average_start": _load()}
        digests = {}
        for numpy in ("blocked", "numpy"):
            runs = []
            for attempt in range(repeats):
                out = manifest.parent / f"process-{numpy}-{attempt}"
                runs.append(_payload_process(numpy, manifest, dictionary, out))
            best = min(range(repeats), key=lambda i: runs[i][0])
            figures[f"{numpy}_cpu_s"] = round(runs[best][0], 3)
            figures[f"{numpy}_map_wall_s"] = min(summary["seconds"]["cooccurrence"] for _, summary in runs)
            figures["docs"] = runs[best][1]["docs"]
            out = manifest.parent / f"process-{numpy}-0"
            digests[numpy] = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.parquet"))]
        figures["numpy_over_blocked_cpu"] = round(figures["numpy_cpu_s"] / figures["blocked_cpu_s"], 3)
        figures["map_cpu_s"] = _map_cpu(manifest.parent / "process-numpy-0")
        figures["map_over_payload_cpu"] = round(figures["map_cpu_s"] / figures["numpy_cpu_s"], 4)
        figures["same_bytes"] = digests["blocked"] == digests["numpy"]
        figures["load_average_end"] = _load()
        print(json.dumps(figures), flush=True)


# --- reduce -------------------------------------------------------------------------------------------------------


def _synthetic_rows(shard: int, docs: int) -> pa.Table:
    """Concept rows of `docs` documents: 3-25 mentions each, concepts Zipf-drawn among CONCEPTS, 10 sentences."""
    rng = np.random.default_rng(1000 + shard)
    mentions = rng.integers(3, 26, size=docs)
    doc_index = np.repeat(np.arange(docs), mentions)
    ranks = np.arange(1, CONCEPTS + 1)
    weights = 1 / ranks
    concepts = rng.choice(CONCEPTS, size=len(doc_index), p=weights / weights.sum())
    sentences = rng.integers(0, 10, size=len(doc_index)).astype(np.int32)
    names = np.array([f"C{c:05d}" for c in range(CONCEPTS)], dtype=object)
    ids = np.array([f"s{shard:03d}d{d:06d}" for d in range(docs)], dtype=object)
    n = len(doc_index)
    return pa.table(
        {"doc_id": ids[doc_index], "concept_id": names[concepts], "start": np.zeros(n, np.int32),
         "end": np.ones(n, np.int32), "sentence": sentences, "matched": names[concepts]},
    )  # fmt: skip


def _partials(folder: Path, shard: int, rows: pa.Table) -> tuple[Path, Path, float]:
    from corpusbridge.extract.cooccurrence import CooccurrenceCounter

    started = time.perf_counter()
    counter = CooccurrenceCounter()
    counter.add(rows)
    pairs, concepts = folder / f"cooccurrence-{shard}.parquet", folder / f"concept-docs-{shard}.parquet"
    counter.write(pairs, concepts, docs=SHARD_DOCS)
    return pairs, concepts, time.perf_counter() - started


def bench_reduce(docs: int, design: str) -> None:
    shards = max(1, docs // SHARD_DOCS)
    with tempfile.TemporaryDirectory(prefix="bench-graph-reduce-") as tmp:
        folder = Path(tmp)
        files, rows_files, map_seconds = [], [], 0.0
        for shard in range(shards):
            rows = _synthetic_rows(shard, SHARD_DOCS)
            pairs, concepts, seconds = _partials(folder, shard, rows)
            map_seconds += seconds
            files.append((pairs, concepts))
            if design == "rows":
                rows_files.append(folder / f"concepts-{shard}.parquet")
                pq.write_table(rows, rows_files[-1])
            del rows
        rss_before = _peak_rss_mb()
        started = time.perf_counter()
        graph_pairs = _reduce(design, files, rows_files)
        seconds = time.perf_counter() - started
    print(json.dumps({
        "bench": "reduce", "design": design, "docs": shards * SHARD_DOCS, "shards": shards,
        "reduce_seconds": round(seconds, 2), "docs_per_s": round(shards * SHARD_DOCS / seconds),
        "graph_pairs": graph_pairs, "map_seconds_all_shards": round(map_seconds, 2),
        "peak_rss_mb_before_reduce": rss_before, "peak_rss_mb": _peak_rss_mb(), "load_average": _load(),
    }))  # fmt: skip


def _reduce(design: str, files: list[tuple[Path, Path]], rows_files: list[Path]) -> int:
    if design == "arrow":
        table = pa.concat_tables(pq.read_table(p) for p, _ in files)
        grouped = table.group_by(["concept_a", "concept_b"]).aggregate([("docs", "sum"), ("sentences", "sum")])
        return grouped.num_rows
    from corpusbridge.db import connect
    from corpusbridge.graph import load, statements

    with connect() as conn:
        for table in (
            "concept_pairs",
            "concept_docs",
            "graph_pending_pairs",
            "graph_pending_concepts",
            "graph_pending_totals",
        ):
            conn.execute(f"TRUNCATE {table}")  # a private bench database; start empty
        conn.commit()
        for index, (pairs, concepts) in enumerate(files):
            with conn.transaction():
                if design in ("partials", "partials-per-shard"):
                    load._copy_partial(conn, pairs, concepts)
                else:
                    _stage_rows_file(conn, rows_files[index])
                    load._pend_rows(conn, STAGED_ROWS, {}, sign=1)
                conn.execute(statements.PEND_TOTALS, {"batch": "bench", "shard": index, "docs": 0, "sentences": 0})
            if design != "partials":  # the earlier design: every shard folded (upserted) on its own
                load.fold_pending(conn)
        load.fold_pending(conn)  # what the load does: one fold per run
        row = conn.execute("SELECT count(*) FROM concept_pairs").fetchone()
        return int(row[0]) if row else 0


STAGED_ROWS = sql.SQL("SELECT doc_id, concept_id, sentence, matched FROM bench_stage_concepts")


def _stage_rows_file(conn, path: Path) -> None:
    """The "rows" design's input: a shard's concept rows in a temporary table, counted by SQL."""
    conn.execute(
        "CREATE TEMP TABLE bench_stage_concepts (doc_id text, concept_id text, sentence integer, matched text) "
        "ON COMMIT DROP"
    )
    columns = ["doc_id", "concept_id", "sentence", "matched"]
    with conn.cursor().copy(f"COPY bench_stage_concepts ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy:
        for batch in pq.ParquetFile(path).iter_batches(columns=columns):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
            copy.write(buffer.getbuffer())


# --- kNN ----------------------------------------------------------------------------------------------------------


def _clustered_vectors(docs: int, dimension: int = 384, seed: int = 9) -> np.ndarray:
    """Unit vectors around 200 topics (documents are not uniform on the sphere; HNSW recall depends on it)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((200, dimension)).astype(np.float32)
    vectors = centres[rng.integers(0, 200, docs)] + 0.9 * rng.standard_normal((docs, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def bench_knn(docs: int, queries: int = 200) -> None:
    """Exact kNN vectors/s (CPU seconds, so per core), then recall@10 of the HNSW index on the same vectors."""
    from corpusbridge.graph.neighbors import knn_blocks, recall_at_k

    vectors = _clustered_vectors(docs)
    started_cpu, started = time.process_time(), time.perf_counter()
    exact = np.concatenate([b.indices for b in knn_blocks(vectors, k=10)])
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    sample = np.random.default_rng(1).choice(docs, size=min(queries, docs), replace=False)
    approximate = _hnsw_answers(vectors, sample)
    print(json.dumps({
        "bench": "knn", "docs": docs, "k": 10, "exact_cpu_s": round(cpu, 2), "exact_wall_s": round(wall, 2),
        "vectors_per_cpu_s": round(docs / cpu), "hnsw_recall_at_10": round(recall_at_k(exact[sample], approximate), 4),
        "hnsw_queries": len(sample), "load_average": _load(),
    }))  # fmt: skip


def _hnsw_answers(vectors: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Each sampled row's 10 nearest other rows as `corpusbridge similar` finds them (HNSW, ef_search 40)."""
    from corpusbridge.db import connect
    from corpusbridge.load.lookup import similar
    from corpusbridge.load.statements import NEAREST

    with connect() as conn:
        conn.execute("TRUNCATE document_vectors")
        with conn.cursor().copy("COPY document_vectors (doc_id, embedding, batch_id, shard) FROM STDIN") as copy:
            for row, vector in enumerate(vectors):
                copy.write_row((str(row), "[" + ",".join(f"{x:.7f}" for x in vector) + "]", "bench", 0))
        conn.commit()
        conn.execute("ANALYZE document_vectors")
        answers = [[int(n.doc_id) for n in similar(conn, str(row), 10)] for row in sample.tolist()]
        vector = conn.execute("SELECT embedding::text FROM document_vectors LIMIT 1").fetchone()
        plan = conn.execute("EXPLAIN " + NEAREST, {"vector": vector[0] if vector else None, "limit": 11}).fetchall()
        print(json.dumps({"hnsw_index_used": any("document_vectors_hnsw" in r[0] for r in plan)}))
        conn.execute("TRUNCATE document_vectors")
        conn.commit()
    return np.array(answers)


def bench_knn_job(docs: int, parts: int) -> None:
    """The kNN job end to end vs the bare kernel on the same vectors; HNSW recall@10 from the loaded graph."""
    from corpusbridge.db import connect
    from corpusbridge.graph.neighbors import knn_blocks
    from corpusbridge.graph.neighbors_job import KnnOptions, run_knn_graph
    from corpusbridge.graph.neighbors_query import hnsw_recall
    from corpusbridge.load.ledger import Provenance

    vectors = _clustered_vectors(docs)
    started = time.perf_counter()
    for _ in knn_blocks(vectors, k=10):
        pass
    kernel = time.perf_counter() - started
    with connect() as conn, tempfile.TemporaryDirectory() as root:
        _put_vectors(conn, vectors)
        started = time.perf_counter()
        done = run_knn_graph(conn, KnnOptions("local", 10, parts, "cpu", Path(root)), Provenance("bench"))
        job = time.perf_counter() - started
        again_started = time.perf_counter()
        again = run_knn_graph(conn, KnnOptions("local", 10, parts, "cpu", Path(root)), Provenance("bench"))
        rerun = time.perf_counter() - again_started
        recall = hnsw_recall(conn, k=10, sample=200)
        conn.execute("TRUNCATE document_vectors, document_neighbors, neighbor_graphs")
        conn.commit()
    print(json.dumps({
        "bench": "knn-job", "docs": docs, "parts": parts, "k": 10, "kernel_wall_s": round(kernel, 2),
        "job_wall_s": round(job, 2), "job_compute_s": done["compute"]["seconds"],
        "job_over_kernel": round(job / kernel, 2), "edges": done["load"]["edges"], "rerun_wall_s": round(rerun, 2),
        "rerun_loaded": again["load"]["loaded"],
        "hnsw_recall_at_10": recall.recall_at_k, "recall_docs": recall.docs, "load_average": _load(),
    }))  # fmt: skip


def _put_vectors(conn: Any, vectors: np.ndarray) -> None:
    conn.execute("TRUNCATE document_vectors, document_neighbors, neighbor_graphs")
    with conn.cursor().copy("COPY document_vectors (doc_id, embedding, batch_id, shard) FROM STDIN") as copy:
        for row, vector in enumerate(vectors):
            copy.write_row((f"d{row:07d}", "[" + ",".join(f"{x:.7f}" for x in vector) + "]", "bench", 0))
    conn.commit()
    conn.execute("ANALYZE document_vectors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("map", "process", "reduce", "knn", "knn-job"))
    parser.add_argument("--parts", type=int, default=2, help="knn-job: array indices")
    parser.add_argument("--docs", type=int, default=None)
    parser.add_argument("--per-words", default="50,15", help="map: a term every N words (comma-separated)")
    parser.add_argument("--design", choices=("partials", "partials-per-shard", "rows", "arrow"), default="partials")
    parser.add_argument("--concepts", type=int, default=CONCEPTS, help="reduce: concepts drawn from (Zipf)")
    parser.add_argument("--manifest", type=Path, help="process: an exported shard's manifest (shard 0) ...")
    parser.add_argument("--dictionary", type=Path, help="process: ... and its dictionary artifact")
    args = parser.parse_args()
    globals()["CONCEPTS"] = args.concepts
    if args.what == "knn":
        bench_knn(args.docs or 20_000)
    elif args.what == "knn-job":
        bench_knn_job(args.docs or 20_000, args.parts)
    elif args.what == "map":
        bench_map(args.docs or 20_000, [int(x) for x in args.per_words.split(",")])
    elif args.what == "process":
        with tempfile.TemporaryDirectory(prefix="bench-graph-process-") as tmp:
            shards = [("exported", args.manifest, args.dictionary)] if args.manifest else []
            for per_words in [int(x) for x in args.per_words.split(",")]:
                manifest, dictionary = _map_shard(Path(tmp), args.docs or 25_000, per_words)
                shards.append((f"generated, a term per {per_words} words", manifest, dictionary))
            bench_process(shards)
    else:
        bench_reduce(args.docs or 100_000, args.design)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "include"))
    main()
