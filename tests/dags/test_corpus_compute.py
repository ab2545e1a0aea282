"""corpus_compute through Airflow (dag.test, real embedded PostgreSQL): its shape and Params, a run with nothing
configured skips with one message, the local round trip reconciles, and a rerun adds no row; the kNN graph through
the deferrable SlurmOperator on the sandbox equals brute force and a rerun submits nothing."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO / "tests" / "fixtures" / "corpora"
TERMS = "concept_id\tterm\nC1\tasthma\nC2\tbudesonide\nC3\tprotein\nC4\tcells\nC5\tpatients\nC6\tgene\n"
ROUND_TRIP = ("preflight", "dictionary", "export", "choose_backend", "compute_local", "load", "reconcile")
KNN_LOCAL = ("neighbors_prepare", "neighbors_backend", "neighbors_local", "neighbors_load")
KNN_SLURM = ("neighbors_prepare", "neighbors_backend", "neighbors_request", "neighbors_slurm", "neighbors_load")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db as airflow_db

    airflow_db.resetdb()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def unconfigured(monkeypatch, tmp_path):
    for name in ("AIRFLOW_CONN_CORPUSBRIDGE_HPC", "AIRFLOW_VAR_CORPUSBRIDGE_DICTIONARY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_WORK_DIR", str(tmp_path / "work"))


def _states(run) -> dict[str, str | None]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def _teardown(run) -> dict:
    """What the run's teardown cancelled."""
    return run.get_task_instance("cancel_stopped_slurm_jobs").xcom_pull(task_ids="cancel_stopped_slurm_jobs")


def test_dag_shape_and_params(dagbag) -> None:
    dag = dagbag.dags["corpus_compute"]
    assert [t.task_id for t in dag.topological_sort()] == [
        "preflight", "dictionary", "export", "choose_backend", "compute_local", "slurm_request", "compute_slurm",
        "load", "reconcile", "concept_graph", "neighbors_prepare", "neighbors_backend", "neighbors_local",
        "neighbors_request", "neighbors_slurm", "neighbors_load", "cancel_stopped_slurm_jobs",
    ]  # fmt: skip
    # After both SLURM tasks, whatever their outcome; a teardown never decides the run's state.
    teardown = dag.get_task("cancel_stopped_slurm_jobs")
    assert teardown.is_teardown and not teardown.on_failure_fail_dagrun
    assert teardown.upstream_task_ids == {"compute_slurm", "neighbors_slurm"}
    outlets = {t.task_id: [a.uri for a in t.outlets] for t in dag.tasks if t.outlets}
    assert outlets == {"concept_graph": ["corpusbridge://postgres/concept_graph"],
                       "neighbors_load": ["corpusbridge://postgres/document_neighbors"]}  # fmt: skip
    # Both cluster waits run in the triggerer, whatever [operators] default_deferrable says.
    for task_id in ("compute_slurm", "neighbors_slurm"):
        assert dag.get_task(task_id).partial_kwargs["deferrable"] is True, task_id
    assert dag.max_active_runs == 1 and dag.catchup is False
    # The Asset after corpus_nightly, or a periodic timetable: without one `airflow backfill create` refuses the DAG.
    assert type(dag.timetable.timetable).__name__ == "CronDataIntervalTimetable"
    assert "corpusbridge://postgres/clean_documents" in repr(dag.timetable.asset_condition)
    expected = {"backend", "dictionary", "selection", "year_from", "year_to", "source", "limit", "query", "shard_rows",
                "embeddings", "reprocess", "partition", "time_limit", "array_parallelism", "container", "graph",
                "neighbors", "k", "knn_parts"}  # fmt: skip
    assert expected <= set(dag.params.keys())
    for name in dag.params:
        param = dag.params.get_param(name)
        assert param.schema.get("title") and param.description, f"Param {name} needs a title and a description"


def test_unconfigured_run_skips_with_one_message(dagbag, unconfigured, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        run = dagbag.dags["corpus_compute"].test()
    states = _states(run)
    assert run.state == "success", states
    assert set(states.values()) == {"skipped"}, states
    message = next(r.getMessage() for r in caplog.records if "not configured" in r.getMessage())
    assert "corpusbridge_dictionary" in message and "corpusbridge_hpc" in message, message


def test_a_run_without_conf_takes_the_backend_variable(dagbag, unconfigured, monkeypatch, tmp_path) -> None:
    """What a scheduled or Asset-triggered run does on a workstation without a cluster: the Variable says local,
    so the run is not skipped for want of a cluster Connection (here it fails later, on the missing dictionary)."""
    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_BACKEND", "local")
    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_DICTIONARY", str(tmp_path / "none.tsv"))
    states = _states(dagbag.dags["corpus_compute"].test())
    assert states["preflight"] == "failed", states  # not skipped: the backend needed no Connection


def test_nightly_unconfigured_skips(dagbag, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_VAR_CORPUSBRIDGE_SOURCE_DIR", raising=False)
    run = dagbag.dags["corpus_nightly"].test()
    assert run.state == "success"
    assert set(_states(run).values()) == {"skipped"}


def test_missing_dictionary_file_fails_without_retrying(dagbag, unconfigured, tmp_path) -> None:
    run = dagbag.dags["corpus_compute"].test(run_conf={"backend": "local", "dictionary": str(tmp_path / "nope.tsv")})
    states = _states(run)
    assert states["preflight"] == "failed", states


def test_a_path_param_outside_the_allowed_roots_fails_at_once(dagbag, unconfigured, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_CORPUSBRIDGE_PARAM_ROOTS", str(tmp_path / "dictionaries"))
    run = dagbag.dags["corpus_compute"].test(run_conf={"backend": "local", "dictionary": "/etc/passwd"})
    states = _states(run)
    assert states["preflight"] == "failed" and states["export"] != "success", states


@pytest.fixture
def corpus_db(db_uri, monkeypatch, tmp_path):
    """A corpus database holding the bundled samples, cleaned, as the Connection corpusbridge_postgres."""
    from psycopg.conninfo import conninfo_to_dict

    from corpusbridge.db import connect
    from corpusbridge.ingest.stage import IngestOptions, run_ingest
    from corpusbridge.sanitize.stage import run_sanitize

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPORA, corpus, ignore=shutil.ignore_patterns("*.md"))
    with connect(db_uri) as conn:
        run_ingest(conn, str(corpus), IngestOptions())
        run_sanitize(conn)
    info = conninfo_to_dict(db_uri)
    conn_json = {"conn_type": "postgres", "host": info.get("host"), "login": info.get("user"), "schema": info["dbname"]}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES", json.dumps(conn_json))
    return db_uri


def _row_counts(db_uri: str) -> dict[str, int]:
    import psycopg
    from psycopg import sql

    tables = ("export_batches", "document_concepts", "document_vectors", "document_results", "load_ledger",
              "concept_pairs", "document_neighbors", "neighbor_graphs")  # fmt: skip
    with psycopg.connect(db_uri) as pg:
        return {
            t: pg.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in tables
        }


def test_local_round_trip_reconciles_and_a_rerun_adds_nothing(dagbag, unconfigured, corpus_db, tmp_path) -> None:
    pytest.importorskip("corpusbridge.export.stage", reason="the export stage is not merged yet")
    pytest.importorskip("corpusbridge.load.stage", reason="the load stage is not merged yet")
    terms = tmp_path / "terms.tsv"
    terms.write_text(TERMS)
    # Every Param the graph steps read stated: dag.test() keeps an earlier test's run_conf in the shared DAG's Params.
    conf = {"backend": "local", "dictionary": str(terms), "shard_rows": 20, "embeddings": True, "reprocess": False,
            "selection": "pending", "graph": True, "neighbors": True, "k": 3, "knn_parts": 2}  # fmt: skip
    dag = dagbag.dags["corpus_compute"]

    first = dag.test(run_conf=conf)
    states = _states(first)
    assert first.state == "success", states
    assert {states[t] for t in (*ROUND_TRIP, "concept_graph", *KNN_LOCAL)} == {"success"}, states
    assert {states[t] for t in ("slurm_request", "compute_slurm", "neighbors_request", "neighbors_slurm")} == {
        "skipped"
    }, states
    # No SLURM task submitted anything: the teardown skips (no SSH session).
    assert states["cancel_stopped_slurm_jobs"] == "skipped", states
    graph = first.get_task_instance("concept_graph").xcom_pull(task_ids="concept_graph")
    assert graph["changed"] and graph["pairs"] > 0 and graph["shards_loaded"] > 1, graph
    computed = first.get_task_instance("neighbors_local").xcom_pull(task_ids="neighbors_local")
    assert computed["shards"] == 2 and not computed["failed"], computed
    knn = first.get_task_instance("neighbors_load").xcom_pull(task_ids="neighbors_load")
    assert knn["load"]["loaded"] and knn["load"]["edges"] == 3 * knn["vectors"], knn
    assert _asset_events(first) == {
        "corpusbridge://postgres/concept_graph",
        "corpusbridge://postgres/document_neighbors",
    }
    reconciled = first.get_task_instance("reconcile").xcom_pull(task_ids="reconcile")
    assert reconciled["ok"] and reconciled["docs_exported"] == reconciled["docs_loaded"] > 0, reconciled
    after_first = _row_counts(corpus_db)
    assert after_first["document_vectors"] == reconciled["docs_loaded"], after_first

    second = dag.test(run_conf=conf)
    assert second.state == "success"
    assert _states(second)["export"] == "skipped", "nothing new: the rerun exports nothing"
    assert {_states(second)[t] for t in ("concept_graph", *KNN_LOCAL)} == {"skipped"}, _states(second)
    assert _asset_events(second) == set(), "graphs unchanged: no Asset event"
    assert _row_counts(corpus_db) == after_first, "a rerun adds no row anywhere"

    again = dag.test(run_conf={**conf, "reprocess": True, "neighbors": False})
    assert again.state == "success", _states(again)
    counts = _row_counts(corpus_db)
    assert counts["document_vectors"] == after_first["document_vectors"], "reprocessing replaces, never duplicates"
    assert counts["document_concepts"] == after_first["document_concepts"]


def _asset_events(run) -> set[str]:
    """The Asset URIs that got an event from `run`'s tasks."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
        return {event.asset.uri for event in events}


@pytest.mark.slurm
def test_slurm_round_trip_through_the_sandbox(
    dagbag, unconfigured, corpus_db, hpc_sandbox, monkeypatch, tmp_path
) -> None:
    """backend slurm: a SLURM array over SSH (one index per shard), fetched, loaded once; a rerun submits nothing."""
    import sys

    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", json.dumps(hpc_sandbox.connection))
    terms = tmp_path / "terms.tsv"
    terms.write_text(TERMS)
    # reprocess/selection explicit: dag.test() keeps an earlier test's run_conf in the shared DAG's Params.
    conf = {"backend": "slurm", "dictionary": str(terms), "shard_rows": 20, "embeddings": False,
            "cluster_python": sys.executable, "time_limit": "00:10:00", "array_parallelism": 2,
            "reprocess": False, "selection": "pending", "graph": True, "neighbors": False}  # fmt: skip
    dag = dagbag.dags["corpus_compute"]
    run = dag.test(run_conf=conf)
    states = _states(run)
    assert run.state == "success", states
    assert states["compute_slurm"] == "success" and states["compute_local"] == "skipped", states
    exported = run.get_task_instance("export").xcom_pull(task_ids="export")
    assert exported["shards"] > 1, "several shards: a real array"
    slurm = run.get_task_instance("compute_slurm", map_index=0).xcom_pull(task_ids="compute_slurm", map_indexes=0)
    assert len(slurm["states"]) == exported["shards"], slurm["states"]
    assert set(slurm["states"].values()) == {"COMPLETED"}, slurm["states"]
    pushed = run.get_task_instance("compute_slurm", map_index=0).xcom_pull(
        task_ids="compute_slurm", map_indexes=0, key="slurm_job_ids"
    )
    assert pushed == slurm["job_ids"]  # what the task's SLURM job link opens
    assert states["cancel_stopped_slurm_jobs"] == "success" and _teardown(run) == {"cancelled": {}}, states
    reconciled = run.get_task_instance("reconcile").xcom_pull(task_ids="reconcile")
    assert reconciled["ok"] and reconciled["docs_loaded"] == exported["docs_exported"], reconciled
    before = _row_counts(corpus_db)

    again = dag.test(run_conf=conf)
    assert _states(again)["export"] == "skipped" and _states(again)["compute_slurm"] == "skipped"
    assert _row_counts(corpus_db) == before


KNN_DOCS, KNN_DIM, KNN_K = 40, 384, 4


@pytest.fixture
def vectors_db(db, db_uri, monkeypatch):
    """A corpus database with no clean document (nothing to export) and 40 loaded vectors around 5 topics, as the
    Connection corpusbridge_postgres: the kNN steps run alone."""
    import uuid

    import numpy as np
    from psycopg.conninfo import conninfo_to_dict

    # A new seed each time: the kNN job is named after its input, and the sandbox (its scratch dirs) outlives tests.
    rng = np.random.default_rng(uuid.uuid4().int % 2**32)
    centres = rng.standard_normal((5, KNN_DIM))
    v = centres[np.arange(KNN_DOCS) % 5] + 0.6 * rng.standard_normal((KNN_DOCS, KNN_DIM))
    vectors = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    ids = [f"doc:{i:03d}" for i in range(KNN_DOCS)]
    with db.transaction():
        for doc_id, row in zip(ids, vectors, strict=True):
            text = "[" + ",".join(f"{x:.9g}" for x in row) + "]"
            db.execute("INSERT INTO document_vectors VALUES (%s, %s::vector, 'b', 0)", (doc_id, text))
    info = conninfo_to_dict(db_uri)
    conn_json = {"conn_type": "postgres", "host": info.get("host"), "login": info.get("user"), "schema": info["dbname"]}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES", json.dumps(conn_json))
    return ids, vectors


def _brute_force(ids: list[str], vectors) -> dict[tuple[str, int], str]:
    import numpy as np

    full = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(full, -np.inf)
    order = np.argsort(-full, axis=1, kind="stable")[:, :KNN_K]
    return {(ids[q], r + 1): ids[n] for q in range(len(ids)) for r, n in enumerate(order[q])}


def _loaded_graph(db_uri: str) -> dict[tuple[str, int], str]:
    import psycopg

    with psycopg.connect(db_uri) as pg:
        rows = pg.execute("SELECT doc_id, rank, neighbor_id FROM document_neighbors").fetchall()
    return {(d, r): n for d, r, n in rows}


@pytest.mark.slurm
def test_knn_graph_through_the_deferrable_slurm_operator(
    dagbag, unconfigured, db_uri, vectors_db, hpc_sandbox, monkeypatch, tmp_path
) -> None:
    """backend slurm, Param neighbors on: the kNN array runs as the SlurmOperator (deferred; in dag.test the trigger
    runs inline), its parts load once and equal brute force and the local backend's; a rerun submits nothing."""
    import sys

    import pyarrow.parquet as pq

    from corpusbridge.compute.neighbors import run_neighbors_local
    from corpusbridge_airflow.stages.graph import _work

    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", json.dumps(hpc_sandbox.connection))
    terms = tmp_path / "terms.tsv"
    terms.write_text(TERMS)
    # Every Param stated: dag.test() keeps an earlier test's run_conf in the shared DAG's Params.
    conf = {"backend": "slurm", "dictionary": str(terms), "shard_rows": 20, "embeddings": False,
            "cluster_python": sys.executable, "time_limit": "00:10:00", "array_parallelism": 2, "partition": None,
            "container": None, "reprocess": False, "selection": "pending", "graph": False, "neighbors": True,
            "k": KNN_K, "knn_parts": 3}  # fmt: skip
    dag = dagbag.dags["corpus_compute"]

    run = dag.test(run_conf=conf)
    states = _states(run)
    assert run.state == "success", states
    assert {states[t] for t in KNN_SLURM} == {"success"}, states
    assert states["neighbors_local"] == states["export"] == "skipped", states
    slurm = run.get_task_instance("neighbors_slurm", map_index=0).xcom_pull(task_ids="neighbors_slurm", map_indexes=0)
    assert len(slurm["states"]) == 3 and set(slurm["states"].values()) == {"COMPLETED"}, slurm["states"]
    assert len(slurm["job_ids"]) == 1, "one array job for the three parts"
    knn = run.get_task_instance("neighbors_load").xcom_pull(task_ids="neighbors_load")
    assert (knn["load"]["loaded"], knn["backend"], knn["load"]["edges"]) == (True, "slurm", KNN_DOCS * KNN_K), knn
    assert _asset_events(run) == {"corpusbridge://postgres/document_neighbors"}
    ids, vectors = vectors_db
    assert _loaded_graph(db_uri) == _brute_force(ids, vectors)
    # The local backend on the same plan computes the same parts, row for row.
    prepared = run.get_task_instance("neighbors_prepare").xcom_pull(task_ids="neighbors_prepare")
    assert run_neighbors_local(_work(prepared), tmp_path / "local").failed == {}
    for name in ("neighbors-0.parquet", "neighbors-1.parquet", "neighbors-2.parquet"):
        fetched = pq.read_table(Path(prepared["out_dir"]) / name).select(["doc_id", "neighbor_id", "rank"])
        assert fetched.equals(pq.read_table(tmp_path / "local" / name).select(["doc_id", "neighbor_id", "rank"]))
    before = _row_counts(db_uri)

    again = dag.test(run_conf=conf)  # the same vectors, k and split: the graph is current
    states = _states(again)
    assert again.state == "success", states
    assert {states[t] for t in KNN_SLURM} == {"skipped"}, "no job, no load"
    assert _asset_events(again) == set()
    assert _row_counts(db_uri) == before

    # A graph computed but never loaded (the current flag dropped here): its parts are on the workstation, so the
    # rerun loads them without any SLURM job.
    import psycopg

    with psycopg.connect(db_uri) as pg:
        pg.execute("UPDATE neighbor_graphs SET current = false")
    reload = dag.test(run_conf=conf)
    states = _states(reload)
    assert states["neighbors_load"] == "success", states
    assert states["neighbors_request"] == states["neighbors_slurm"] == "skipped", states
    assert _asset_events(reload) == {"corpusbridge://postgres/document_neighbors"}
    assert _loaded_graph(db_uri) == _brute_force(ids, vectors)

    # The parts gone from the workstation (a fetch that never happened): the next run's operator is named after the
    # work, not the run, so it finds its indices done in the same scratch dir and only fetches: no second job.
    out_dir = Path(prepared["out_dir"])
    shutil.rmtree(out_dir)
    with psycopg.connect(db_uri) as pg:
        pg.execute("UPDATE neighbor_graphs SET current = false")
    refetch = dag.test(run_conf=conf)
    states = _states(refetch)
    assert {states[t] for t in KNN_SLURM} == {"success"}, states
    fetched = refetch.get_task_instance("neighbors_slurm", map_index=0).xcom_pull(
        task_ids="neighbors_slurm", map_indexes=0
    )
    assert fetched["scratch_dir"] == slurm["scratch_dir"] and set(fetched["job_ids"]) <= set(slurm["job_ids"])
    assert _loaded_graph(db_uri) == _brute_force(ids, vectors)

    # A part damaged on the cluster: the load refuses it (no retry can help) and removes its marker there, so the
    # next run submits that index alone and loads the graph.
    remote = Path(slurm["scratch_dir"]) / "out" / "neighbors-1.parquet"  # the sandbox's node is this machine
    remote.write_bytes(remote.read_bytes()[:-20] + b"\0" * 20)
    shutil.rmtree(out_dir)
    with psycopg.connect(db_uri) as pg:
        pg.execute("UPDATE neighbor_graphs SET current = false")
    refused = dag.test(run_conf=conf)
    assert _states(refused)["neighbors_load"] == "failed", _states(refused)
    assert _asset_events(refused) == set()
    healed = dag.test(run_conf=conf)
    states = _states(healed)
    assert states["neighbors_load"] == "success", states
    redone = healed.get_task_instance("neighbors_slurm", map_index=0).xcom_pull(
        task_ids="neighbors_slurm", map_indexes=0
    )
    assert redone["scratch_dir"] == slurm["scratch_dir"], "the same work, the same scratch dir"
    [new_job] = set(redone["job_ids"]) - set(slurm["job_ids"])
    assert [key for key in redone["states"] if key.startswith(f"{new_job}_")] == [f"{new_job}_1"], redone["states"]
    assert _loaded_graph(db_uri) == _brute_force(ids, vectors)
