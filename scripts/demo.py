"""`make demo`: run the corpus_nightly DAG (ingest -> sanitize -> index) through Airflow on the bundled samples
plus a generated crawl, against the embedded PostgreSQL, print the reconciled counts and run a search.

Everything lives under $CORPUSBRIDGE_HOME (default ./.corpusbridge); run it twice to see the incremental rerun.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("CORPUSBRIDGE_HOME") or REPO / ".corpusbridge").absolute()


def _airflow_env() -> None:
    """Airflow reads its settings at import: a private home with a SQLite metadata DB, this repo's DAGs."""
    airflow_home = HOME / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(airflow_home))
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{airflow_home}/airflow.db")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ["CORPUSBRIDGE_HOME"] = str(HOME)


def _demo_corpus() -> Path:
    """The real public samples plus 5,000 generated documents with ~1% bad records, made once."""
    corpus = HOME / "demo-corpus"
    if not (corpus / "generated" / ".expected.json").exists():
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.copytree(
            REPO / "tests" / "fixtures" / "corpora", corpus / "samples", ignore=shutil.ignore_patterns("*.md")
        )
        sys.path.insert(0, str(REPO / "bench"))
        from gen_corpus import generate

        generate(corpus / "generated", 5000, bad_fraction=0.01, seed=2026)
    return corpus


def main() -> int:
    _airflow_env()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    corpus = _demo_corpus()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db as airflow_db

    airflow_db.initdb()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    if bag.import_errors:
        print(bag.import_errors, file=sys.stderr)
        return 1
    run = bag.dags["corpus_nightly"].test(run_conf={"source_dir": str(corpus)})
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    print(f"\ncorpus_nightly run {run.run_id}: {run.state}  tasks: {states}")
    _print_counts()
    return 0 if run.state == "success" else 1


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
    print(f"  raw_documents now holds {total_docs} documents")
    _print_sanitize_and_search()


def _print_sanitize_and_search(query: str = '"mild asthma"') -> None:
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
