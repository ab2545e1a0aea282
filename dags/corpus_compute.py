"""corpus_compute: clean documents -> concepts and vectors, on this workstation or as a SLURM array, loaded once.

**First run.** Unpause this DAG before `corpus_nightly` (an Asset event that arrives while it is paused starts
nothing), then trigger it with Compute backend `local` and Concept dictionary set to a terms file, e.g. the
repository's `include/corpusbridge/dictionaries/sample-terms.tsv`; the reconcile task's log ends with "N exported =
N processed = N loaded". For the cluster, set the Connection `corpusbridge_hpc` (README, "Running on the cluster")
and use backend `slurm`. Schedule: after each `corpus_nightly` that changed the clean documents, or daily at
00:00 UTC (Airflow shows only the Asset). A run with nothing to do skips its tasks and says why in the first
skipped task's log (`preflight`: nothing configured; `export`: nothing new or nothing matching the filters).

How it works: preflight -> dictionary -> export -> choose_backend -> compute_local | slurm_request -> compute_slurm
-> load -> reconcile -> concept_graph, neighbors_prepare -> neighbors_backend -> neighbors_local | neighbors_request
-> neighbors_slurm -> neighbors_load. `compute_slurm` stages the shards and the dictionary artifact over
SSH, submits one array index per shard, waits deferred in the triggerer (no worker slot), and fetches the verified
results.
`cancel_stopped_slurm_jobs` (a teardown, after both SLURM tasks) scancels the jobs of a SLURM task a user marked
failed or success before the triggerer ran its trigger (the trigger's on_kill covers the other case); a no-op
otherwise.

The concept co-occurrence graph is updated inside the load (each shard's partial counts, exactly once with its
ledger row); `concept_graph` reports it (Param `graph`) and the Asset `corpusbridge://postgres/concept_graph` gets
an event when this run changed it. The document similarity graph (Param `neighbors`, with `k` and `knn_parts`) has
the compute step's shape: `neighbors_prepare` exports every loaded vector and skips when the current graph is the one
of these vectors, k and split; the exact kNN job runs in `neighbors_local` or as the deferrable `neighbors_slurm`
array (one index per part; staged, submitted or re-attached, fetched verified; named after the vectors, k and split,
so a later run of the same work re-attaches too), and `neighbors_load` verifies every part and loads the graph once:
the Asset `corpusbridge://postgres/document_neighbors` gets an event when a new graph replaced the old one.

Runs after `corpus_nightly` (the Asset `corpusbridge://postgres/clean_documents`), daily at 00:00 UTC as a catch-up,
and on UI triggers with the Params below. A backfill run re-exports the documents cleaned in its data interval
with today's dictionary and model; the load ledger keeps every row unique however often a date is reprocessed.
A run with nothing configured (no dictionary; backend slurm without the Connection `corpusbridge_hpc`) skips with
one message naming what to set.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    Param,
    dag,
    get_current_context,
    task,
    teardown,
)

from corpusbridge.ingest.formats import SOURCE_FORMATS
from corpusbridge_airflow.operators.slurm import SlurmOperator

CLEAN_DOCUMENTS = Asset("corpusbridge://postgres/clean_documents")
CONCEPT_GRAPH = Asset("corpusbridge://postgres/concept_graph")
DOCUMENT_NEIGHBORS = Asset("corpusbridge://postgres/document_neighbors")
NULL_INT = ["null", "integer"]
NULL_STR = ["null", "string"]
SLURM_TASKS = ("compute_slurm", "neighbors_slurm")
# The trigger form's sections (Airflow groups Params by `section`, each a fold that starts closed): the basics stay
# in the open default section; the filters, what only the SLURM backend reads and the graphs fold away.
FILTERS, SLURM, GRAPHS = "Filters", "SLURM (backend slurm only)", "Graphs"

PARAMS = {
    "backend": Param(
        "auto",
        enum=["auto", "local", "slurm"],
        values_display={"auto": "auto: Variable corpusbridge_backend, else slurm", "local": "local", "slurm": "slurm"},
        title="Compute backend",
        description="slurm: an array job on the cluster of Connection corpusbridge_hpc; local: subprocesses on "
        "this workstation (prototyping on a subset, no queue); auto: the Variable corpusbridge_backend, else slurm "
        "(what scheduled and Asset-triggered runs use)",
    ),
    "dictionary": Param(
        None,
        type=NULL_STR,
        title="Concept dictionary",
        description="Terms file on this workstation (TSV concept_id<TAB>term, CSV or JSONL); default: Variable "
        "corpusbridge_dictionary. To try it: the repository's include/corpusbridge/dictionaries/sample-terms.tsv",
    ),
    "embeddings": Param(
        True,
        type="boolean",
        title="Embeddings",
        description="Compute MiniLM vectors besides the concepts",
    ),
    "shard_rows": Param(
        50_000,
        type="integer",
        minimum=1,
        title="Documents per shard",
        description="Each shard is one payload process (local) or one array index (slurm)",
    ),
    "selection": Param(
        "pending",
        enum=["pending", "all"],
        title="Selection",
        description="pending: clean documents new or changed since their last load with this dictionary and model; "
        "all: every clean document matching the filters below, loaded or not (what Reprocess does too)",
    ),
    "reprocess": Param(
        False,
        type="boolean",
        title="Reprocess",
        description="On: the same as Selection all. Documents already loaded are exported again and their "
        "previous concepts and vectors replaced, never duplicated (backfill runs always reprocess)",
    ),
    "year_from": Param(
        None, type=NULL_INT, title="From year", description="Only documents published in or after", section=FILTERS
    ),
    "year_to": Param(
        None, type=NULL_INT, title="To year", description="Only documents published in or before", section=FILTERS
    ),
    "source": Param(
        None,
        type=NULL_STR,
        title="Source format",
        description="Only documents of this format: " + ", ".join(SOURCE_FORMATS),
        section=FILTERS,
    ),
    "limit": Param(
        None, type=NULL_INT, minimum=1, title="Limit", description="Export at most N documents", section=FILTERS
    ),
    "query": Param(
        None,
        type=NULL_STR,
        title="Full-text query",
        description='Only documents matching it, in web-search syntax: words, "a phrase", -excluded, a or b',
        section=FILTERS,
    ),
    "partition": Param(
        None, type=NULL_STR, title="SLURM partition", description="Default: the Connection's", section=SLURM
    ),
    "time_limit": Param(
        "01:00:00",
        type="string",
        title="SLURM time limit",
        description="Per array index, as sbatch --time",
        section=SLURM,
    ),
    "array_parallelism": Param(
        None,
        type=NULL_INT,
        minimum=1,
        title="Array throttle",
        description="At most N indices at once (--array %N)",
        section=SLURM,
    ),
    "container": Param(
        None,
        type=NULL_STR,
        title="Container image",
        description="Apptainer image on the cluster to run the payload in; default: the cluster's python",
        section=SLURM,
    ),
    "cluster_python": Param(
        None,
        type=NULL_STR,
        title="Cluster python",
        description="Interpreter with corpusbridge on the nodes (no container); default: Variable "
        "corpusbridge_hpc_python, else python3",
        section=SLURM,
    ),
    "graph": Param(
        True,
        type="boolean",
        title="Concept graph",
        description="Report the concept co-occurrence graph after the load; its Asset gets an event when the run "
        "changed it",
        section=GRAPHS,
    ),
    "neighbors": Param(
        False,
        type="boolean",
        title="Document similarity graph",
        description="Run the exact kNN job over every loaded vector (on the backend above) and load it; needs "
        "embeddings",
        section=GRAPHS,
    ),
    "k": Param(
        10, type="integer", minimum=1, title="Neighbours (k)", description="Neighbours per document", section=GRAPHS
    ),
    "knn_parts": Param(
        1,
        type="integer",
        minimum=1,
        title="kNN array indices",
        description="Blocks of queries the kNN job is split into (one SLURM array index each)",
        section=GRAPHS,
    ),
}


def graph_tasks(after: list):
    """concept_graph and the kNN steps, after the load or without one (nothing new to export: the graphs may still
    be asked for); each reads the database, not an upstream's XCom. Returns the kNN SLURM task."""

    @task(outlets=[CONCEPT_GRAPH], trigger_rule="none_failed_min_one_success")
    def concept_graph(params: dict | None = None) -> dict:
        from corpusbridge_airflow.stages.graph import concept_graph_stage

        return concept_graph_stage(params or {}, get_current_context()["run_id"])

    @task(trigger_rule="none_failed_min_one_success")
    def neighbors_prepare(params: dict | None = None) -> dict:
        from corpusbridge_airflow.stages.graph import neighbors_prepare_stage

        return neighbors_prepare_stage(params or {})

    @task.branch
    def neighbors_backend(prepared: dict) -> str:
        from corpusbridge_airflow.stages.graph import neighbors_next

        return neighbors_next(prepared)

    @task
    def neighbors_local(prepared: dict) -> dict:
        from corpusbridge_airflow.stages.graph import neighbors_local_stage

        return neighbors_local_stage(prepared)

    @task
    def neighbors_request(prepared: dict, params: dict | None = None) -> list:
        from corpusbridge_airflow.stages.graph import neighbors_request

        return neighbors_request(prepared, params or {})

    @task(outlets=[DOCUMENT_NEIGHBORS], trigger_rule="none_failed_min_one_success")
    def neighbors_load(prepared: dict) -> dict:
        from corpusbridge_airflow.stages.graph import neighbors_load_stage, neighbors_next

        context = get_current_context()
        fetched = {}  # only a SLURM run has a result to pull: a pull that finds nothing logs an error
        if neighbors_next(prepared) == "neighbors_request":
            fetched = context["ti"].xcom_pull(task_ids="neighbors_slurm", map_indexes=0) or {}
        return neighbors_load_stage(prepared, context["run_id"], fetched.get("scratch_dir"))

    after >> concept_graph()
    prepared = neighbors_prepare()
    after >> prepared
    branch = neighbors_backend(prepared)
    local = neighbors_local(prepared)
    request = neighbors_request(prepared)
    # Deferrable like compute_slurm: the wait for the kNN array runs in the triggerer, not in a worker slot.
    remote = SlurmOperator.partial(task_id="neighbors_slurm", deferrable=True, poll_interval=5.0).expand_kwargs(request)
    loaded = neighbors_load(prepared)
    branch >> [local, request, loaded]
    [local, remote] >> loaded
    return remote


@dag(
    dag_id="corpus_compute",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), assets=CLEAN_DOCUMENTS
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params=PARAMS,
    tags=["corpusbridge"],
    doc_md=__doc__,
)
def corpus_compute() -> None:
    @task
    def preflight(params: dict | None = None) -> dict:
        from corpusbridge_airflow.stages.export import preflight

        return preflight(params or {})

    @task
    def dictionary(config: dict) -> dict:
        from corpusbridge_airflow.stages.compute import dictionary_stage

        return dictionary_stage(config["terms"])

    @task
    def export(artifact: dict, params: dict | None = None) -> dict:
        from corpusbridge_airflow.stages.export import export_stage, run_info

        return export_stage(params or {}, run_info(get_current_context()), artifact)

    @task.branch
    def choose_backend(config: dict, exported: dict) -> str:
        return "compute_local" if config["backend"] == "local" else "slurm_request"

    @task
    def compute_local(exported: dict, artifact: dict, params: dict | None = None) -> dict:
        from corpusbridge_airflow.stages.compute import local_stage

        return local_stage(exported, artifact, params or {})

    @task
    def slurm_request(exported: dict, artifact: dict, params: dict | None = None) -> list:
        from corpusbridge_airflow.stages.compute import slurm_request

        return slurm_request(exported, artifact, params or {})

    @task(trigger_rule="none_failed_min_one_success")
    def load(exported: dict) -> dict:
        from corpusbridge_airflow.stages.load import load_stage

        return load_stage(exported, get_current_context()["run_id"])

    @task
    def reconcile(loaded: dict) -> dict:
        from corpusbridge_airflow.stages.load import reconcile_stage

        return reconcile_stage(loaded["batch_id"])

    config = preflight()
    artifact = dictionary(config)
    exported = export(artifact)
    branch = choose_backend(config, exported)
    local = compute_local(exported, artifact)
    request = slurm_request(exported, artifact)
    # One mapped instance whose array_size is the shard count, known only after the export.
    # Always deferrable, whatever [operators] default_deferrable says: the wait must not hold a worker slot.
    remote = SlurmOperator.partial(task_id="compute_slurm", deferrable=True, poll_interval=5.0).expand_kwargs(request)
    loaded = load(exported)
    branch >> [local, request]
    [local, remote] >> loaded
    reconciled = reconcile(loaded)
    knn_remote = graph_tasks([config, reconciled])

    # A teardown: it runs once both SLURM tasks are done, whatever their outcome, and never decides the run's state.
    @teardown
    def cancel_stopped_slurm_jobs() -> dict:
        from corpusbridge_airflow.stages.slurm_cleanup import cancel_stopped_stage

        return cancel_stopped_stage(get_current_context()["ti"], SLURM_TASKS)

    [remote, knn_remote] >> cancel_stopped_slurm_jobs()


corpus_compute()
