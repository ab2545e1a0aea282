"""What names a SLURM job: a new option must not rename the jobs of every run made before it existed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.airflow


def test_container_gpu_joins_the_job_parameters_only_when_set() -> None:
    from corpusbridge_airflow.operators.slurm import SlurmOperator

    plain = SlurmOperator(task_id="t", command=["python", "-m", "x"], container="img.sif")
    gpu = SlurmOperator(task_id="t", command=["python", "-m", "x"], container="img.sif", container_gpu=True)
    assert "container_gpu" not in plain._parameters()
    assert gpu._parameters() == {**plain._parameters(), "container_gpu": True}
