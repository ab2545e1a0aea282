"""Run one DAG of tests/dags/slurm with `dag.test()` in a fresh process and Airflow home.

Used by the SLURM integration tests so that slow scenarios (TIMEOUT, restarts) run side by side, and so
that a worker can be SIGKILLed mid-wait. Usage:
    python run_dag.py DAG_ID RESULT_JSON [--conf JSON] [--run-after ISO] [--db-template FILE]
    python run_dag.py --init-db FILE          (a migrated metadata DB that runs copy instead of migrating)
Writes {"state": ..., "tis": {task: [state, try]}, "run_id": ...} to RESULT_JSON; task logs go to stdout.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

DAGS = Path(__file__).resolve().parents[1]
REPO = DAGS.parents[2]


def prepare_airflow_env() -> None:
    home = tempfile.mkdtemp(prefix="cb-slurm-dagtest-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)  # a SIGKILLed run leaves its home; the rest do not
    os.environ.update(
        AIRFLOW_HOME=home,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        # As airflow.cfg.example: SLURM waits defer unless a DAG says deferrable=False.
        AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE="True",
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(
            [
                {
                    "name": "slurm-tests",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(DAGS), "refresh_interval": 0},
                }
            ]
        ),
    )
    for path in (REPO / "plugins", REPO / "include"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def init_db(template: str | None) -> None:
    """Copy the template DB when given (saves ~2 s of CPU per run on a busy box), else create one."""
    target = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    if template and Path(template).exists():
        shutil.copyfile(template, target)
        return
    from airflow.utils import db

    db.resetdb()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dag_id", nargs="?")
    parser.add_argument("result", nargs="?")
    parser.add_argument("--conf", default="{}")
    parser.add_argument("--run-after", default=None)
    parser.add_argument("--db-template", default=None)
    parser.add_argument("--init-db", default=None, help="write a migrated metadata DB to this file and exit")
    args = parser.parse_args()
    prepare_airflow_env()
    if args.init_db:
        init_db(None)
        from airflow import settings

        settings.engine.dispose()  # checkpoints SQLite's WAL into the file; a copy before it is an empty DB
        shutil.copyfile(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db", args.init_db)
        return 0
    init_db(args.db_template)
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    when = pendulum.parse(args.run_after) if args.run_after else None
    kwargs = {"run_after": when, "logical_date": when} if when else {}
    run = bag.dags[args.dag_id].test(run_conf=json.loads(args.conf), **kwargs)
    tis = {ti.task_id: [ti.state, ti.try_number] for ti in run.get_task_instances()}
    Path(args.result).write_text(json.dumps({"state": run.state, "tis": tis, "run_id": run.run_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
