"""The operator extra link from a SLURM task to its job's page on the cluster (e.g. Open OnDemand's job list).

Clusters differ in where a job's details live, so the URL is a template from Airflow's config:
`[corpusbridge] slurm_job_url = https://ondemand.example.org/pun/sys/dashboard/activejobs?jobid={job_id}`
(or `AIRFLOW__CORPUSBRIDGE__SLURM_JOB_URL`). Without it, or before the task has recorded a job id, the link is empty
and Airflow shows it disabled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def job_url(template: str | None, job_ids: list[str]) -> str:
    """The link for the first job of a task's result; "" when there is nothing to link to."""
    if not template or not job_ids:
        return ""
    return template.replace("{job_id}", quote(str(job_ids[0]), safe=""))


class SlurmJobLink(BaseOperatorLink):
    """`SLURM job`: opens the first SLURM job of the task (the job ids are in the task's return XCom)."""

    name = "SLURM job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk import conf
        from airflow.sdk.execution_time.xcom import XCom

        template = conf.get("corpusbridge", "slurm_job_url", fallback=None)
        result: Any = XCom.get_value(ti_key=ti_key, key="return_value") if template else None
        job_ids = result.get("job_ids", []) if isinstance(result, dict) else []
        return job_url(template, [str(j) for j in job_ids])
