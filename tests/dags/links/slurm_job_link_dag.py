"""A DAG for the SLURM job link test (tests/unit/airflow/test_slurm_job_link.py): no cluster can run here, so a test
double stands in for the SlurmOperator; it records job ids as the SlurmOperator does (the `slurm_job_ids` XCom at
submission, `job_ids` in its return value) and carries the same link."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, BaseOperator

from corpusbridge_airflow.links import JOB_IDS_XCOM, SlurmJobLink


class SubmitsWithoutCluster(BaseOperator):
    """Test double: "submits" job `job_id`, then succeeds or fails as a SLURM job's task would."""

    operator_extra_links = (SlurmJobLink(),)

    def __init__(self, *, job_id: str, fail: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id, self.fail = job_id, fail

    def execute(self, context: Any) -> dict[str, Any]:
        context["ti"].xcom_push(key=JOB_IDS_XCOM, value=[self.job_id])
        if self.fail:
            raise RuntimeError(f"SLURM job {self.job_id} index 0: FAILED exit 3 (test double)")
        return {"job_ids": [self.job_id]}


with DAG("cb_slurm_job_link", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    SubmitsWithoutCluster(task_id="done", job_id="4711")
    SubmitsWithoutCluster(task_id="failed", job_id="4712", fail=True)
