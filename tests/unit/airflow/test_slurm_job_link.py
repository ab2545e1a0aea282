"""The SlurmOperator's `SLURM job` link: it survives DAG serialization (what the API server reads), the worker stores
its URL when a try ends, done or failed, and the URL comes from `[corpusbridge] slurm_job_url` (none when unset)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = "https://slurm.example.org/jobs/{job_id}"


def test_recorded_job_ids_prefer_those_pushed_at_submission() -> None:
    from corpusbridge_airflow.links import job_url, recorded_job_ids

    assert recorded_job_ids(["41", "42"], None) == ["41", "42"]
    assert recorded_job_ids(None, {"job_ids": [7]}) == ["7"]
    assert recorded_job_ids(None, "not a dict") == []
    assert job_url(TEMPLATE, recorded_job_ids(["a/b"], None)) == "https://slurm.example.org/jobs/a%2Fb"


def test_the_compute_dags_slurm_task_keeps_its_link_through_serialization() -> None:
    """The API server rebuilds links from the serialized DAG: the name and the XCom key the worker fills."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    from corpusbridge_airflow.operators.slurm import SlurmOperator

    bag = DagBag(dag_folder=str(REPO / "dags" / "corpus_compute.py"))
    assert bag.import_errors == {}
    data = json.loads(json.dumps(DagSerialization.to_dict(bag.dags["corpus_compute"])))
    (encoded,) = [t["__var"] for t in data["dag"]["tasks"] if t["__var"]["task_id"] == "compute_slurm"]
    assert encoded["_operator_extra_links"] == {"SLURM job": "_link_SlurmJobLink"}
    task = DagSerialization.from_dict(data).get_task("compute_slurm")
    assert task.extra_links == ["SLURM job"]
    assert [link.xcom_key for link in task.operator_extra_links] == [SlurmOperator.operator_extra_links[0].xcom_key]


# Runs in a fresh process: dag.test() needs the DAG in a bundle of the process's own dags folder.
RUN_AND_READ_LINKS = """
import json, sys
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.utils import db

db.resetdb()
dag = DagBag(dag_folder=sys.argv[1]).dags["cb_slurm_job_link"]
run = dag.test(logical_date=pendulum.now("UTC"))
served = DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(dag))))  # as the API server has it
links = {}
for ti in run.get_task_instances():
    (link,) = served.get_task(ti.task_id).operator_extra_links
    links[f"{ti.task_id}:{ti.state}"] = link.get_link(served.get_task(ti.task_id), ti_key=ti.key)
print("LINKS=" + json.dumps(links))
"""


def _run_links(tmp_path: Path, template: str | None) -> dict[str, str | None]:
    """Run the test DAG; the link each task shows, read the way the API server reads it (serialized DAG + XCom)."""
    dags = REPO / "tests" / "dags" / "links"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        **({"AIRFLOW__CORPUSBRIDGE__SLURM_JOB_URL": template} if template else {}),
    }
    proc = subprocess.run(
        [sys.executable, "-c", RUN_AND_READ_LINKS, str(dags)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("LINKS=")]
    return json.loads(line.removeprefix("LINKS="))


def test_a_done_or_failed_task_links_to_its_job(tmp_path: Path) -> None:
    assert _run_links(tmp_path, TEMPLATE) == {
        "done:success": "https://slurm.example.org/jobs/4711",
        "failed:failed": "https://slurm.example.org/jobs/4712",
    }


def test_no_link_without_the_url_setting(tmp_path: Path) -> None:
    links = _run_links(tmp_path, None)
    assert set(links) == {"done:success", "failed:failed"} and set(links.values()) <= {"", None}
