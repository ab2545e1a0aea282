"""`make demo`: the whole chain through Airflow on the bundled samples plus a generated crawl, against the embedded
PostgreSQL: corpus_nightly (ingest -> sanitize -> index), then corpus_compute (export -> payload with concepts and
CPU embeddings -> exactly-once load -> reconcile -> concept graph + exact kNN graph). Prints the reconciled counts at
every hop, a search, similar documents (from the exact kNN graph, with HNSW's recall@10 against it) and concept
counts, and draws the neighbourhood of the best-connected concept (`corpusbridge related ID --svg
$CORPUSBRIDGE_HOME/demo-related.svg`).

`make demo-hpc` (`--backend slurm`) sends the compute through the loopback SLURM sandbox over SSH instead
(`scripts/hpc-sandbox.sh up` must have written .corpusbridge/sandbox.env).

Everything lives under $CORPUSBRIDGE_HOME (default ./.corpusbridge; demo-hpc under its `demo-hpc/` folder, with a
database of its own); run it twice to see the incremental rerun (nothing new: no export, no job, no row).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("CORPUSBRIDGE_HOME") or REPO / ".corpusbridge").absolute()
# numpy embeddings run at ~24 abstracts/s on this 2-core box (bench/RESULTS.md, "embed"): 2,500 generated documents
# plus the samples take about two minutes to embed, a few with the matching and the load.
GENERATED_DOCS = 2500
SHARD_ROWS = 1000  # three shards: three payload runs locally, a three-index array on SLURM
QUERY = '"mild asthma"'  # a phrase, in web-search syntax
SHOWN: dict[str, str] = {}  # the document and concept the demo showed, for the commands it suggests after


def _airflow_env(state: Path) -> None:
    """Airflow reads its settings at import: a private home with a SQLite metadata DB, this repo's DAGs."""
    airflow_home = state / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(airflow_home))
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{airflow_home}/airflow.db")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", _fernet_key(airflow_home / "fernet.key"))
    # What a person follows: corpusbridge's own progress and counts; Airflow's task-runner chatter only when it warns.
    os.environ.setdefault("AIRFLOW__LOGGING__NAMESPACE_LEVELS", "airflow=WARNING task=WARNING alembic=WARNING")
    os.environ["CORPUSBRIDGE_HOME"] = str(state)


def _fernet_key(path: Path) -> str:
    """The demo's own key for what Airflow stores encrypted (made once, private to this user): without one Airflow
    warns that it stores connections and variables in the clear."""
    if not path.exists():
        from cryptography.fernet import Fernet

        path.touch(mode=0o600)
        path.write_bytes(Fernet.generate_key())
    return path.read_text().strip()


def _demo_corpus() -> Path:
    """The real public samples plus GENERATED_DOCS generated documents with ~1% bad records, made once."""
    corpus = HOME / f"demo-corpus-{GENERATED_DOCS}"
    if not (corpus / "generated" / ".expected.json").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.copytree(
            REPO / "tests" / "fixtures" / "corpora", corpus / "samples", ignore=shutil.ignore_patterns("*.md")
        )
        sys.path.insert(0, str(REPO / "bench"))
        from gen_corpus import generate

        generate(corpus / "generated", GENERATED_DOCS, bad_fraction=0.01, seed=2026)
    return corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("local", "slurm"), default="local")
    args = parser.parse_args(argv)
    if args.backend == "slurm" and not _sandbox_env():
        return 2
    # demo-hpc keeps a database of its own: after `make demo` the shared one has nothing left to compute.
    _airflow_env(HOME / "demo-hpc" if args.backend == "slurm" else HOME)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    corpus = _demo_corpus()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db as airflow_db

    airflow_db.initdb()
    # dag.test()'s own narration ("[DAG TEST] starting task", and "No tasks to run" once a second while a skip
    # propagates, 1,600 characters each): the tasks' own lines tell the story.
    logging.getLogger("airflow.sdk.definitions.dag").setLevel(logging.ERROR)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        print(bag.import_errors, file=sys.stderr)
        return 1
    run = bag.dags["corpus_nightly"].test(run_conf={"source_dir": str(corpus)})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    print(f"\ncorpus_nightly run {run.run_id}: {run.state}  tasks: {states}")
    if run.state != "success":
        return 1
    compute = bag.dags["corpus_compute"].test(run_conf=_compute_conf(args.backend))
    compute_states = {ti.task_id: ti.state for ti in compute.get_task_instances()}
    _print_counts()
    print(f"\ncorpus_compute run {compute.run_id} ({args.backend}): {compute.state}  tasks: {compute_states}")
    _print_round_trip(compute_states.get("export") == "skipped")
    _print_next_steps(args.backend)
    return 0 if compute.state == "success" else 1


def _sandbox_env() -> bool:
    """demo-hpc: the cluster Connection and SLURM_CONF that `scripts/hpc-sandbox.sh up` wrote."""
    env_file = HOME / "sandbox.env"
    if not env_file.exists():
        print(f"{env_file} is missing: run `scripts/hpc-sandbox.sh up` (make sandbox-up) first", file=sys.stderr)
        return False
    for line in env_file.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            os.environ[key.strip()] = _unquote(value.strip())
    return "AIRFLOW_CONN_CORPUSBRIDGE_HPC" in os.environ


def _unquote(value: str) -> str:
    parts = shlex.split(value)
    return parts[0] if len(parts) == 1 else value


def _compute_conf(backend: str) -> dict:
    from corpusbridge.load.pipeline import default_terms

    conf = {"backend": backend, "dictionary": str(default_terms()), "shard_rows": SHARD_ROWS, "embeddings": True,
            "graph": True, "neighbors": True, "k": 10}  # fmt: skip
    if backend == "slurm":
        # The sandbox's node is this machine: the payload runs with this venv's python, no container.
        conf |= {"cluster_python": sys.executable, "time_limit": "00:30:00"}
    return conf


def _print_round_trip(nothing_new: bool) -> None:
    from corpusbridge.db import connect
    from corpusbridge.load.status import pipeline_status

    with connect() as conn:
        last = pipeline_status(conn)["last_reconciliation"]
        concepts = conn.execute(
            """SELECT concept_id, count(*), count(DISTINCT doc_id) FROM document_concepts
               GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 8"""
        ).fetchall()
        totals = conn.execute(
            "SELECT (SELECT count(*) FROM document_concepts), (SELECT count(*) FROM document_vectors)"
        ).fetchone()
    if nothing_new:
        print("  nothing new since the last load: no export, no job, no row (the last load is shown below)")
    if last:
        ok = last.get("ok")
        print(f"\nload run {last['run_id']}: batch {last.get('batch_id')}")
        print(f"  documents: {last.get('docs_exported')} exported = {last.get('docs_processed')} processed = "
              f"{last.get('docs_loaded')} loaded  {'[reconciled]' if ok else '[DOES NOT RECONCILE]'}")  # fmt: skip
    print(f"  database: {totals[0]} concept mentions, {totals[1]} document vectors")
    print("\nconcepts found most often (mentions, documents):")
    for concept_id, mentions, docs in concepts:
        print(f"  {concept_id:<24} {mentions:>7} {docs:>6}")
    _print_similar()
    draw_related(Path(os.environ["CORPUSBRIDGE_HOME"]) / "demo-related.svg")  # this demo's own state folder


def draw_related(out: Path, limit: int = 30) -> None:
    """`corpusbridge related ID --svg out` for the concept with the most neighbours in the loaded graph."""
    from corpusbridge.cli import main as cli
    from corpusbridge.db import connect

    with connect() as conn:
        row = conn.execute(
            """SELECT d.concept_id FROM concept_docs d
               ORDER BY (SELECT count(*) FROM concept_pairs p WHERE d.concept_id IN (p.concept_a, p.concept_b)) DESC,
                        d.docs DESC, d.concept_id LIMIT 1"""
        ).fetchone()
    if row is None:
        return
    SHOWN["concept"] = row[0]
    print(f"\ncorpusbridge related {row[0]} --limit {limit} --svg {out}")
    cli(["related", row[0], "--limit", str(limit), "--svg", str(out)])


def _print_similar(query: str = QUERY) -> None:
    from corpusbridge.db import connect
    from corpusbridge.graph.neighbors_query import hnsw_recall, similar
    from corpusbridge.index.search import search
    from corpusbridge.load.lookup import UnknownDocument, document_concepts

    with connect() as conn:
        hits = search(conn, query, limit=1)
        if not hits:
            return
        doc_id = SHOWN["document"] = hits[0].doc_id
        try:
            answer = similar(conn, doc_id, limit=5)
            found = document_concepts(conn, doc_id)
        except UnknownDocument as exc:
            print(f"\n{exc}")
            return
        recall = hnsw_recall(conn, k=10) if answer.source == "knn_graph" else None
    neighbours = answer.neighbours
    print(f"\ncorpusbridge similar {doc_id}  ({hits[0].title})  [source: {answer.source}]")
    if recall is not None:
        print(f"  (corpusbridge graph recall: HNSW recall@10 = {recall.recall_at_k} on {recall.docs} documents)")
    for rank, hit in enumerate(neighbours, 1):
        print(f"  {rank}. {hit.similarity:.3f}  {hit.doc_id}  {hit.title}")
    shown = min(6, len(found.concepts))
    print(f"\ncorpusbridge concepts {doc_id}: {len(found.concepts)} mentions (the first {shown})")
    for concept in found.concepts[:shown]:
        where = f"[{concept.start}:{concept.end}]"
        print(f"  {concept.concept_id:<24} {where:<12} {concept.matched!r} (sentence {concept.sentence})")


def _print_next_steps(backend: str) -> None:
    """What a person can ask next: the same database through the CLI (it follows $CORPUSBRIDGE_HOME)."""
    state = Path(os.environ["CORPUSBRIDGE_HOME"])
    where = "this demo's database"
    if state == REPO / ".corpusbridge":
        where = "this database from the repository root, or anywhere"
    print(f"\nnext: the CLI reads {where} with CORPUSBRIDGE_HOME={state}")
    run = "run --backend local --source CRAWL_DIR   (the whole chain without Airflow)"
    if backend == "slurm":  # the sandbox's node is this machine: this very python runs the payload there
        print(f"  (for the cluster commands, first: set -a; . {HOME / 'sandbox.env'}; set +a)")
        run = f"run --backend slurm --slurm-python {sys.executable} --source CRAWL_DIR"
    doc_id, concept = SHOWN.get("document", "DOC_ID"), SHOWN.get("concept", "CONCEPT_ID")
    commands = ("status", f"search {shlex.quote(QUERY)}", f"similar {doc_id}", f"concepts {doc_id}",
                f"related {concept}", "quarantine", run)  # fmt: skip
    for command in commands:
        print(f"  .venv/bin/corpusbridge {command}")


def _print_counts() -> None:
    from corpusbridge.db import connect

    with connect() as conn:
        row = conn.execute(
            """SELECT run_id, files_seen, files_new, files_changed, files_unchanged, records_seen, records_loaded,
                      records_duplicate, records_quarantined, seconds
               FROM ingest_runs ORDER BY run_id DESC LIMIT 1"""
        ).fetchone()
        classes = conn.execute(
            "SELECT error_class, count(*) FROM quarantine WHERE run_id = %s GROUP BY 1 ORDER BY 2 DESC", (row[0],)
        ).fetchall()
        total_docs = conn.execute("SELECT count(*) FROM raw_documents").fetchone()[0]
    run_id, seen, new, changed, unchanged, records, loaded, dup, quarantined, seconds = row
    print(f"\ningest run {run_id} ({seconds:.2f} s)")
    print(f"  files:   {seen} seen = {new} new + {changed} changed + {unchanged} unchanged")
    print(f"  records: {records} seen = {loaded} loaded + {dup} duplicate + {quarantined} quarantined", end="")
    print("  [reconciled]" if records == loaded + dup + quarantined else "  [DOES NOT RECONCILE]")
    if classes:
        print("  quarantine: " + ", ".join(f"{cls} {n}" for cls, n in classes) + "  (corpusbridge quarantine)")
        print("  (the demo's generator makes about 1% of its records bad on purpose: each is quarantined, never lost)")
    print(f"  raw_documents now holds {total_docs} documents")
    _print_sanitize_and_search()


def _print_sanitize_and_search(query: str = QUERY) -> None:
    from corpusbridge.db import connect
    from corpusbridge.index.search import search

    with connect() as conn:
        row = conn.execute(
            """SELECT run_id, docs_in, docs_clean, docs_rejected, reject_reasons, duplicates_linked, seconds
               FROM sanitize_runs WHERE status = 'succeeded' ORDER BY run_id DESC LIMIT 1"""
        ).fetchone()
        hits = search(conn, query, limit=3)
    if row:
        run_id, docs_in, clean, rejected, reasons, dups, seconds = row
        print(f"\nsanitize run {run_id} ({seconds:.2f} s)")
        print(f"  documents: {docs_in} in = {clean} clean + {rejected} rejected {reasons or ''}  [reconciled]"
              if docs_in == clean + rejected else f"  documents: {docs_in} in: DOES NOT RECONCILE")  # fmt: skip
        print(f"  exact duplicates linked to a canonical document: {dups}")
    print(f"\ncorpusbridge search {query!r} (PostgreSQL full-text index):")
    for rank, hit in enumerate(hits, 1):
        print(f"  {rank}. {hit.score:.3f}  {hit.doc_id}  ({hit.year})  {hit.title}")


if __name__ == "__main__":
    sys.exit(main())
