"""The round trip per stage, through the library API, against peers measured in the same run.

    python bench/end_to_end.py --docs 10000 --docs 100000 [--slurm-docs 10000] [--embed-docs 5000]

For each size, in a fresh database on the embedded server: generated clean documents (gen_corpus's text generator,
COPYed straight into `clean_documents`, not timed; then the real index stage, timed apart), a dictionary of
`--terms` two-word terms over the generator's vocabulary (~8 matches per document), then, timed:
export (`run_export`) -> payload (`run_local`, concepts only) -> load (`run_load`), and the load's peer: a bare
COPY of the same result rows (with batch_id and shard) into tables made `LIKE document_concepts INCLUDING ALL`
(same columns, primary key and indexes), one transaction per shard, from the same Parquet files through the same
Arrow CSV writer.

With `--slurm-docs N` (repeatable; AIRFLOW_CONN_CORPUSBRIDGE_HPC set, e.g. by `scripts/hpc-sandbox.sh up`), size N is
also computed by `run_slurm_on` in a scratch folder of its own; its staging, submission, waiting and fetching are
timed by wrapping compute.slurm's steps (a bench-only shim), and its result files are compared byte for byte with
the local backend's. The payload's own time under SLURM is taken as the local backend's on the same shards (same
machine, same command), so "sensing" = wait - payload.

With `--embed-docs N`: the first N documents again with embeddings (numpy runtime on this CPU), in shards of
`--embed-shard-rows`: payload and load docs/s with vectors, the bare COPY of the vectors into a `LIKE
document_vectors INCLUDING ALL` table (HNSW maintained in both; one shard at a time, and as many at once as the load
writes), and the bytes per document of `document_vectors` + HNSW.

With `--reprocess`: every document exported, computed and loaded a second time after the first load, timed against
the first load (the second replaces each document's concept rows and takes them out of the concept graph).

Ratios printed (goals of the round-trip issue): cost per document of the largest size over the smallest (<= 1.2),
(everything but the payload) / payload (<= 0.5; also for the embeddings batch, whose payload is the pipeline's
default work), bare COPY seconds / load seconds (>= 0.5).
"""

from __future__ import annotations

import argparse
import filecmp
import io
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "bench")]

from gen_corpus import WORDS, _doc  # noqa: E402
from ingest import _fresh_db  # noqa: E402  (the ingestion bench's fresh database on the embedded server)

from corpusbridge.db import embedded_uri  # noqa: E402

SIZE_TABLES = ("clean_documents", "document_concepts", "document_vectors", "document_results",
               "export_batch_documents")  # fmt: skip
SIZE_INDEXES = ("clean_documents_search", "document_vectors_hnsw", "document_concepts_pkey",
                "document_concepts_concept")  # fmt: skip
CLEAN_COLUMNS = ("doc_id", "source_format", "title", "abstract", "year", "language", "language_from", "canonical_id",
                 "clean_hash", "source_seq", "run_id", "code_version")  # fmt: skip


def write_terms(path: Path, count: int, seed: int = 11) -> Path:
    """`count` distinct two-word terms of the generator's vocabulary, one concept per 3 terms."""
    rng = random.Random(seed)
    pairs = sorted({(a, b) for a in WORDS for b in WORDS if a != b})
    chosen = rng.sample(pairs, count)
    lines = ["concept_id\tterm"] + [f"bench:c{i // 3}\t{a} {b}" for i, (a, b) in enumerate(chosen)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _copy_field(value: object) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def fill_clean(conn: Any, docs: int, seed: int = 5) -> float:
    """`docs` clean documents shaped like sanitize's output (title, abstract, year); returns the seconds taken."""
    started = time.monotonic()
    rng = random.Random(seed)
    statement = f"COPY clean_documents ({', '.join(CLEAN_COLUMNS)}) FROM STDIN"
    with conn.cursor().copy(statement) as copy:
        buffer = io.StringIO()
        for i in range(docs):
            d = _doc(rng, i)
            doc_id = f"doi:10.5555/synth.{i:09d}"
            row = (doc_id, "jsonl", d["title"], d["abstract"], d["year"], "en", "source", doc_id, f"h{i}", i, 0,
                   "bench")  # fmt: skip
            buffer.write("\t".join(_copy_field(v) for v in row) + "\n")
            if i % 5000 == 4999:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    conn.commit()
    return time.monotonic() - started


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    value = fn(*args, **kwargs)
    return value, time.monotonic() - started


def _checkpoint(conn: Any) -> None:
    conn.commit()
    conn.execute("CHECKPOINT")
    conn.commit()


def bare_copy(conn: Any, manifest: Path, results: Path, kind: str, workers: int = 1) -> tuple[float, int]:
    """The load's peer: the result rows COPYed straight into a LIKE-INCLUDING-ALL twin of the final table, one
    transaction per shard, `workers` shards at once (each on its own connection, as the load does)."""
    from corpusbridge.export.manifest import read_manifest
    from corpusbridge.load.parallel import loaded_shards

    table = f"bench_bare_{kind}"
    source = {"concepts": "document_concepts", "vectors": "document_vectors", "cooccurrence": "concept_pairs"}[kind]
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    # the graph's partials repeat pairs across shards: their twin keeps the columns, not the primary key
    including = "" if kind == "cooccurrence" else " INCLUDING ALL"
    conn.execute(f"CREATE TABLE {table} (LIKE {source}{including})")
    _checkpoint(conn)
    batch = read_manifest(manifest)
    copy_rows = {"concepts": _bare_concepts, "vectors": _bare_vectors, "cooccurrence": _bare_pairs}[kind]

    def copy_shard(shard_conn: Any, index: int) -> int:
        with shard_conn.transaction():
            return copy_rows(shard_conn, table, results / f"{kind}-{index}.parquet", batch.batch_id, index)

    started = time.monotonic()
    indices = sorted(shard.index for shard in batch.shards)
    rows = sum(n for _, n in loaded_shards(conn, indices, copy_shard, workers=workers))
    return time.monotonic() - started, rows


def _bare_concepts(conn: Any, table: str, path: Path, batch_id: str, index: int) -> int:
    """The concept rows tagged and written as CSV exactly as the load writes them (streams.copy_csv)."""
    from corpusbridge.load.streams import _tagged, copy_csv

    statement = (f"COPY {table} (doc_id, concept_id, start_offset, end_offset, sentence, matched, batch_id, shard) "
                 "FROM STDIN (FORMAT csv)")  # fmt: skip
    return copy_csv(conn, statement, _tagged(path, batch_id, index))


def _bare_pairs(conn: Any, table: str, path: Path, batch_id: str, index: int) -> int:
    from corpusbridge.load.streams import copy_csv

    columns = ["concept_a", "concept_b", "docs", "sentences"]
    return copy_csv(conn, f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)", _parts(path, columns, 65_536))


def _bare_vectors(conn: Any, table: str, path: Path, batch_id: str, index: int) -> int:
    """Binary rows as the load sends them; batch_id and shard added through a twin without them."""
    from corpusbridge.load.streams import _BINARY_HEADER, _BINARY_TRAILER, _binary_rows

    conn.execute("CREATE TEMP TABLE bare_in (doc_id text, embedding vector(384)) ON COMMIT DROP")
    rows = 0
    with conn.cursor().copy("COPY bare_in (doc_id, embedding) FROM STDIN (FORMAT binary)") as copy:
        copy.write(_BINARY_HEADER)
        for part in _parts(path, ["doc_id", "vector"], 16_384):
            copy.write(_binary_rows(part))
            rows += part.num_rows
        copy.write(_BINARY_TRAILER)
    conn.execute(f"INSERT INTO {table} SELECT doc_id, embedding, %s, %s FROM bare_in", (batch_id, index))
    return rows


def _parts(path: Path, columns: list[str], rows: int) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns)


def relation_sizes(conn: Any) -> dict[str, int]:
    """pg_total_relation_size of the round trip's tables, pg_relation_size of their big indexes."""
    out = {}
    for name in SIZE_TABLES:
        out[name] = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (name,)).fetchone()[0]
    for name in SIZE_INDEXES:
        out[f"index:{name}"] = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
    out["clean_documents_heap"] = conn.execute("SELECT pg_relation_size('clean_documents')").fetchone()[0]
    return out


class SlurmTimer:
    """Times compute.slurm's staging, submission, waiting and fetching by wrapping them (bench only)."""

    def __init__(self) -> None:
        from corpusbridge.compute import slurm

        self.seconds: dict[str, float] = {}
        self._slurm = slurm
        self._saved = {name: getattr(slurm, name) for name in ("_stage", "wait_for_indices", "_fetch")}
        self._saved_submit = slurm.jobs.submit_or_reattach

    def __enter__(self) -> SlurmTimer:
        for name, label in (("_stage", "staging"), ("wait_for_indices", "wait"), ("_fetch", "fetch")):
            setattr(self._slurm, name, self._wrap(self._saved[name], label))
        self._slurm.jobs.submit_or_reattach = self._wrap(self._saved_submit, "submit")
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self._saved.items():
            setattr(self._slurm, name, fn)
        self._slurm.jobs.submit_or_reattach = self._saved_submit

    def _wrap(self, fn: Any, label: str) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.monotonic() - started

        return timed


def _cluster() -> Any:
    from corpusbridge.cli.run import HPC_CONN_ENV, connection_mapping
    from corpusbridge.hpc.cluster import ClusterSettings

    text = os.environ.get(HPC_CONN_ENV)
    if not text:
        sys.exit(
            f"--slurm-docs needs {HPC_CONN_ENV} (source .corpusbridge/sandbox.env after scripts/hpc-sandbox.sh up)"
        )
    mapping = connection_mapping(text)
    extra = mapping["extra"] if isinstance(mapping["extra"], dict) else json.loads(mapping["extra"])
    # a scratch folder of our own: never re-attach to another run's (or another helper's) work
    mapping["extra"] = extra | {"scratch_root": f"{extra['scratch_root']}/bench-e2e-{uuid.uuid4().hex[:8]}"}
    return ClusterSettings.from_mapping(mapping)


def _rate(docs: int, seconds: float) -> float:
    return round(docs / seconds, 1) if seconds > 0 else float("inf")


def bench_size(server: str, docs: int, args: argparse.Namespace, scratch: Path, dictionary: Any) -> dict:
    import psycopg

    from corpusbridge.compute.local import run_local
    from corpusbridge.compute.slurm import run_slurm_on
    from corpusbridge.config import load_workers
    from corpusbridge.export.selection import Selection
    from corpusbridge.export.stage import run_export
    from corpusbridge.index.stage import run_index
    from corpusbridge.load.ledger import Provenance
    from corpusbridge.load.stage import run_load

    uri = _fresh_db(server, f"bench_e2e_{docs}")
    row: dict[str, Any] = {"docs": docs, "load_average_start": os.getloadavg()}
    with psycopg.connect(uri) as conn:
        row["fill_s"] = round(fill_clean(conn, docs), 2)
        _, row["index_s"] = _timed(run_index, conn)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE clean_documents")
        conn.autocommit = False
        _checkpoint(conn)
        out = scratch / f"size-{docs}"
        selection = Selection(mode="pending", dictionary_version=dictionary.version)
        exported, row["export_s"] = _timed(run_export, conn, selection, out / "exports", shard_rows=args.shard_rows)
        manifest = Path(exported.manifest)
        row |= {"shards": exported.shards, "docs_exported": exported.docs_exported, "export_mb": exported.bytes / 1e6}
        results = out / "results-local"
        computed, row["payload_s"] = _timed(
            run_local, manifest, dictionary.path, results, embeddings=False, workers=args.workers
        )
        row["docs_processed"] = computed.docs_processed
        assert not computed.failed, computed.failed
        _checkpoint(conn)
        loaded, row["load_s"] = _timed(run_load, conn, manifest, results, provenance=Provenance("bench-e2e"))
        row |= {"docs_loaded": loaded.docs_loaded, "concepts_loaded": loaded.concepts_loaded,
                "reconciled": loaded.reconciled}  # fmt: skip
        row["bare_copy_s"], bare_rows = bare_copy(conn, manifest, results, "concepts")
        assert bare_rows == loaded.concepts_loaded, (bare_rows, loaded.concepts_loaded)
        conn.execute("DROP TABLE bench_bare_concepts")
        row["load_workers"] = load_workers()
        if row["load_workers"] > 1:  # the peer at the load's own parallelism too
            row["bare_copy_parallel_s"], _ = bare_copy(conn, manifest, results, "concepts", row["load_workers"])
            conn.execute("DROP TABLE bench_bare_concepts")
        row["bare_copy_pairs_s"], row["pair_partial_rows"] = bare_copy(conn, manifest, results, "cooccurrence")
        conn.execute("DROP TABLE bench_bare_cooccurrence")
        conn.commit()
        if args.reprocess:
            row |= _reprocess(conn, args, out, row["load_s"])
        if docs in args.slurm_docs:
            row |= _slurm(run_slurm_on, manifest, dictionary.path, out / "results-slurm", results, row["payload_s"])
        row["sizes"] = _vacuumed_sizes(conn)
        if args.embed_docs and docs == max(args.docs):
            row["embeddings"] = _embeddings(conn, args, out, dictionary)
            row["sizes_with_vectors"] = _vacuumed_sizes(conn)
    row["load_average_end"] = os.getloadavg()
    local_other = row["export_s"] + row["load_s"]
    row["ratio_other_vs_payload_local"] = round(local_other / row["payload_s"], 3)
    row["ratio_bare_copy_vs_load"] = round(row["bare_copy_s"] / row["load_s"], 3)
    if "bare_copy_parallel_s" in row:
        row["ratio_bare_copy_parallel_vs_load"] = round(row["bare_copy_parallel_s"] / row["load_s"], 3)
    # the load also reduces the graph: its peer then also COPYs the shards' pair partials (no upsert, no key)
    with_pairs = row["bare_copy_s"] + row["bare_copy_pairs_s"]
    row["ratio_bare_copy_with_pairs_vs_load"] = round(with_pairs / row["load_s"], 3)
    row["ms_per_doc"] = {
        stage: round(1000 * row[f"{stage}_s"] / docs, 4) for stage in ("export", "payload", "load", "bare_copy")
    } | {"round_trip": round(1000 * (local_other + row["payload_s"]) / docs, 4)}
    row["docs_per_s"] = {stage: _rate(docs, row[f"{stage}_s"]) for stage in ("index", "export", "payload", "load")}
    _drop(server, f"bench_e2e_{docs}")
    return row


def _vacuumed_sizes(conn: Any) -> dict:
    """Every relation's size after VACUUM ANALYZE (which runs outside a transaction)."""
    conn.autocommit = True
    try:
        conn.execute("VACUUM ANALYZE")
        return relation_sizes(conn)
    finally:
        conn.autocommit = False


def _slurm(run_slurm_on: Any, manifest: Path, dictionary: Path, out: Path, local: Path, payload_s: float) -> dict:
    with SlurmTimer() as timer:
        computed, total = _timed(
            run_slurm_on, _cluster(), manifest, dictionary, out, embeddings=False, python=sys.executable,
            poll_seconds=1.0, label=uuid.uuid4().hex[:8],
        )  # fmt: skip
    assert not computed.failed, computed.failed
    fetched = sorted(out.glob("concepts-*.parquet"))
    same = len(fetched) == len(list(local.glob("concepts-*.parquet"))) and all(
        filecmp.cmp(local / p.name, p, shallow=False) for p in fetched
    )
    s = {k: round(v, 2) for k, v in timer.seconds.items()}
    s["total"] = round(total, 2)
    s["sensing_over_payload"] = round(s.get("wait", 0.0) - payload_s, 2)
    return {"slurm": s, "slurm_results_identical_to_local": same, "slurm_jobs": computed.job_ids}


def _reprocess(conn: Any, args: argparse.Namespace, out: Path, load_s: float) -> dict:
    """Every document exported, computed and loaded again with a new dictionary version (same size, other terms):
    the load now replaces each document's rows and takes their counts out of the concept graph."""
    from corpusbridge.compute.dictionary import cached_dictionary
    from corpusbridge.compute.local import run_local
    from corpusbridge.export.selection import Selection
    from corpusbridge.export.stage import run_export
    from corpusbridge.load.ledger import Provenance
    from corpusbridge.load.stage import run_load

    terms = write_terms(out / "terms-again.tsv", args.terms, seed=12)
    dictionary = cached_dictionary(terms, out / "dictionaries-again")
    _checkpoint(conn)
    selection = Selection(mode="pending", dictionary_version=dictionary.version)
    exported = run_export(conn, selection, out / "exports-again", shard_rows=args.shard_rows)
    manifest = Path(exported.manifest)
    computed = run_local(manifest, dictionary.path, out / "results-again", embeddings=False, workers=args.workers)
    assert not computed.failed, computed.failed
    _checkpoint(conn)
    loaded, seconds = _timed(run_load, conn, manifest, out / "results-again", provenance=Provenance("bench-again"))
    assert loaded.reconciled and loaded.docs_loaded == exported.docs_exported, (exported, loaded)
    return {"reprocess_load_s": round(seconds, 2), "ratio_reprocess_load_vs_first_load": round(seconds / load_s, 3)}


def _embeddings(conn: Any, args: argparse.Namespace, out: Path, dictionary: Any) -> dict:
    """The first `embed_docs` documents again, with vectors (numpy runtime): payload, load, bare COPY of vectors."""
    from corpusbridge.compute.local import run_local
    from corpusbridge.config import load_workers
    from corpusbridge.export.selection import Selection
    from corpusbridge.export.stage import run_export
    from corpusbridge.load.ledger import Provenance
    from corpusbridge.load.pipeline import model_hash
    from corpusbridge.load.stage import run_load

    n = args.embed_docs
    e: dict[str, Any] = {"docs": n, "load_average_start": os.getloadavg()}
    selection = Selection(mode="all", limit=n, dictionary_version=dictionary.version, model_hash=model_hash(True))
    shard_rows = args.embed_shard_rows or args.shard_rows
    exported, e["export_s"] = _timed(run_export, conn, selection, out / "exports-embed", shard_rows=shard_rows)
    e |= {"shards": exported.shards, "load_workers": load_workers()}
    manifest = Path(exported.manifest)
    results = out / "results-embed"
    computed, e["payload_s"] = _timed(run_local, manifest, dictionary.path, results, embeddings=True,
                                      workers=args.workers)  # fmt: skip
    assert not computed.failed, computed.failed
    _checkpoint(conn)
    loaded, e["load_s"] = _timed(run_load, conn, manifest, results, provenance=Provenance("bench-e2e-embed"))
    e |= {"vectors_loaded": loaded.vectors_loaded, "concepts_loaded": loaded.concepts_loaded,
          "reconciled": loaded.reconciled}  # fmt: skip
    e["bare_copy_vectors_s"], _ = bare_copy(conn, manifest, results, "vectors")
    size = conn.execute("SELECT pg_total_relation_size('bench_bare_vectors')").fetchone()
    e["bare_copy_vectors_hnsw_bytes"] = size[0]
    conn.execute("DROP TABLE bench_bare_vectors")
    if e["load_workers"] > 1 and exported.shards > 1:  # HNSW inserts from several sessions at once
        e["bare_copy_vectors_parallel_s"], _ = bare_copy(conn, manifest, results, "vectors", e["load_workers"])
        conn.execute("DROP TABLE bench_bare_vectors")
    conn.commit()
    # the goal "everything but the payload <= 0.5x the payload", against the payload the pipeline exists for
    e["ratio_other_vs_payload"] = round((e["export_s"] + e["load_s"]) / e["payload_s"], 3)
    e["payload_docs_per_s"] = _rate(n, e["payload_s"])
    e["load_docs_per_s"] = _rate(n, e["load_s"])
    e["load_average_end"] = os.getloadavg()
    return e


def _drop(server: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, action="append", help="corpus size (repeatable; default 10000, 100000)")
    parser.add_argument("--slurm-docs", type=int, action="append", default=[], help="also run this size through SLURM")
    parser.add_argument("--embed-docs", type=int, default=0, help="embeddings on this many documents (0: no)")
    parser.add_argument("--terms", type=int, default=2000, help="two-word dictionary terms")
    parser.add_argument("--shard-rows", type=int, default=25_000)
    parser.add_argument(
        "--embed-shard-rows", type=int, default=1_000, help="shard size of the embeddings subset (several shards)"
    )
    parser.add_argument("--workers", type=int, default=None, help="payload processes per shard (default: all cores)")
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--reprocess", action="store_true", help="then load every document again (replaces rows)")
    args = parser.parse_args()
    args.docs = sorted(args.docs or [10_000, 100_000])
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="cb-e2e-"))
    scratch.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CORPUSBRIDGE_HOME", str(scratch / "home"))
    from corpusbridge.compute.dictionary import cached_dictionary

    dictionary = cached_dictionary(write_terms(scratch / "terms.tsv", args.terms), scratch / "dictionaries")
    server = embedded_uri(scratch / "pgdata")
    rows = []
    for docs in args.docs:
        rows.append(bench_size(server, docs, args, scratch, dictionary))
        print(json.dumps(rows[-1]), flush=True)
    small, big = rows[0], rows[-1]
    summary = {
        "cost_per_doc_big_over_small": round(big["ms_per_doc"]["round_trip"] / small["ms_per_doc"]["round_trip"], 3),
        "payload_per_doc_big_over_small": round(big["ms_per_doc"]["payload"] / small["ms_per_doc"]["payload"], 3),
        "other_vs_payload_local": {r["docs"]: r["ratio_other_vs_payload_local"] for r in rows},
        "bare_copy_vs_load": {r["docs"]: r["ratio_bare_copy_vs_load"] for r in rows},
        "bare_copy_with_pairs_vs_load": {r["docs"]: r["ratio_bare_copy_with_pairs_vs_load"] for r in rows},
        "bare_copy_parallel_vs_load": {r["docs"]: r.get("ratio_bare_copy_parallel_vs_load") for r in rows},
        "load_workers": rows[-1]["load_workers"],
        "other_vs_payload_with_embeddings": big.get("embeddings", {}).get("ratio_other_vs_payload"),
        "goals": "cost_per_doc_big_over_small <= 1.2; other_vs_payload <= 0.5; bare_copy_vs_load >= 0.5",
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
