"""The operator extra link from a SLURM task to its job's page on the cluster (e.g. Open OnDemand's job list).

Clusters differ in where a job's details live, so the URL is a template from Airflow's config:
`[corpusbridge] slurm_job_url = https://ondemand.example.org/pun/sys/dashboard/activejobs?jobid={job_id}`
(or `AIRFLOW__CORPUSBRIDGE__SLURM_JOB_URL`). Without it, or before the task has recorded a job id, the link is empty
and Airflow shows it disabled.

How Airflow 3 shows it: when a try ends (deferred, failed or done), the worker calls `get_link` and stores the URL as
the XCom `_link_SlurmJobLink`; the API server rebuilds the link from the serialized DAG (its name and that key) and
reads the XCom, without importing this module. The job ids come from the XCom `slurm_job_ids`, which the operator
pushes as soon as it has submitted or re-attached, so a task waiting on its job or failed with it links to it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

JOB_IDS_XCOM = "slurm_job_ids"
# Pushed beside the job ids: where a cancel of those jobs writes its markers (the teardown in stages/slurm_cleanup.py).
SCRATCH_XCOM = "slurm_scratch_dir"


def job_url(template: str | None, job_ids: list[str]) -> str:
    """The link for the first job of a task's result; "" when there is nothing to link to."""
    if not template or not job_ids:
        return ""
    return template.replace("{job_id}", quote(str(job_ids[0]), safe=""))


def recorded_job_ids(pushed: Any, result: Any) -> list[str]:
    """The task's job ids: those pushed at submission, else those of its return value."""
    if isinstance(pushed, list) and pushed:
        return [str(j) for j in pushed]
    job_ids = result.get("job_ids", []) if isinstance(result, dict) else []
    return [str(j) for j in job_ids]


class SlurmJobLink(BaseOperatorLink):
    """`SLURM job`: opens the first SLURM job of the task."""

    name = "SLURM job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk import conf
        from airflow.sdk.execution_time.xcom import XCom

        template = conf.get("corpusbridge", "slurm_job_url", fallback=None)
        if not template:
            return ""
        pushed = XCom.get_value(ti_key=ti_key, key=JOB_IDS_XCOM)
        result = None if pushed else XCom.get_value(ti_key=ti_key, key="return_value")
        return job_url(template, recorded_job_ids(pushed, result))
