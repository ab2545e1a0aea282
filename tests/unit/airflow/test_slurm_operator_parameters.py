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


def test_state_policy_is_checked_at_parse_time_and_names_no_job() -> None:
    from corpusbridge_airflow.operators.slurm import SlurmOperator

    plain = SlurmOperator(task_id="t", command="true")
    waits = SlurmOperator(task_id="t", command="true", state_policy={"PREEMPTED": "wait"})
    assert plain._parameters() == waits._parameters()  # how states are read is not what the job runs
    with pytest.raises(ValueError, match="t: state policy"):
        SlurmOperator(task_id="t", command="true", state_policy={"COMPLETED": "fail"})


@pytest.mark.parametrize(("setting", "expected"), [(None, False), ("False", False), ("True", True)])
def test_default_deferrable_is_honoured(setting: str | None, expected: bool) -> None:
    """As the providers do: `[operators] default_deferrable` decides when the DAG does not say (Airflow: False)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"}
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "plugins"), str(repo / "include")])
    if setting is not None:
        env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = setting
    code = (
        "from corpusbridge_airflow.operators.slurm import SlurmOperator as O\n"
        "from corpusbridge_airflow.sensors.slurm import SlurmJobSensor as S\n"
        "print(O(task_id='t', command='true').deferrable, S(task_id='s', job_ids='1').deferrable)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == [str(expected), str(expected)]


def test_work_key_names_the_job_across_runs() -> None:
    """Without it each run is its own work; with it a later run of the same work re-attaches, and other work (other
    arguments or another key) never does."""
    from types import SimpleNamespace

    from corpusbridge.hpc.cluster import ClusterSettings
    from corpusbridge_airflow.operators.slurm import SlurmOperator

    settings = ClusterSettings(host="h", scratch_root="/scratch")

    def spec(run_id: str, **kwargs):
        operator = SlurmOperator(task_id="t", command=["python", "-m", "x"], **kwargs)
        ti = SimpleNamespace(dag_id="d", task_id="t", map_index=0)
        made = operator.job_spec({"ti": ti, "run_id": run_id}, settings)
        return made.job_name, made.scratch

    assert spec("run1") != spec("run2")
    assert spec("run1", work_key="vectors-ab") == spec("run2", work_key="vectors-ab")
    assert spec("run1", work_key="vectors-ab") != spec("run1", work_key="vectors-cd")
    assert spec("run1", work_key="vectors-ab") != spec("run1", work_key="vectors-ab", array_size=2)
