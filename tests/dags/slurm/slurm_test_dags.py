"""DAGs the SLURM integration tests run with `dag.test()` (tests/integration/test_slurm_*.py).

Wiring only, as a real DAG file: every scenario-specific value arrives through Params, and each run carries
a `nonce` param that goes into the command, so every test run gets its own job name and scratch dir.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param, get_current_context, task

from corpusbridge_airflow.operators.slurm import SlurmOperator
from corpusbridge_airflow.sensors.slurm import SlurmJobSensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
COMMON = {"nonce": Param("n0", type="string"), "outdir": Param("/tmp", type="string")}
FAST = {"poll_interval": 1.0, "unreachable_budget": 120.0}


@task
def record(result: dict) -> None:
    """Write the upstream XCom where the test can read it (proves a downstream task receives it)."""
    outdir = Path(get_current_context()["params"]["outdir"])
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "result.json").write_text(json.dumps(result, indent=1))


# Stage in 4 files, count the bytes of one per index, stage the counts back out.
with DAG("cb_slurm_array", schedule=None, start_date=START, params={**COMMON, "indir": Param("/tmp")}):
    array = SlurmOperator(
        task_id="compute",
        command='# {{ params.nonce }}\nwc -c < "in $SLURM_ARRAY_TASK_ID.txt" > "count-$SLURM_ARRAY_TASK_ID.txt"\n'
        'echo "index $SLURM_ARRAY_TASK_ID counted"; echo "note from $SLURM_ARRAY_TASK_ID" >&2',
        array_size=4,
        array_parallelism=2,
        stage_in=[f"{{{{ params.indir }}}}/in {i}.txt" for i in range(4)],
        stage_out=["count-*.txt"],
        local_output_dir="{{ params.outdir }}/fetched",
        sbatch_options={"time": "00:05:00", "mem": "64M", "comment": "{{ params.nonce }}"},
        **FAST,
    )
    record(array.output)

# Index 2 fails on its first run only (a flag file in scratch); one retry must rerun index 2 alone.
with DAG("cb_slurm_retry", schedule=None, start_date=START, params=COMMON):
    flaky = SlurmOperator(
        task_id="compute",
        command='# {{ params.nonce }}\nif [ "$SLURM_ARRAY_TASK_ID" = 2 ] && [ ! -e flag-2 ]; then\n'
        '  : > flag-2; echo "index 2 breaks once" >&2; exit 3\nfi\necho "index $SLURM_ARRAY_TASK_ID ok"',
        array_size=4,
        sbatch_options={"comment": "{{ params.nonce }}"},
        retries=1,
        retry_delay=timedelta(seconds=0),
        **FAST,
    )
    record(flaky.output)

# 40 indices, 4 at a time; every even index fails on its first run only. The retry resubmits the 20 even indices,
# whose throttled pending remainder SLURM prints in step form (`<job>_[8-38:2%4]`).
with DAG("cb_slurm_retry_even", schedule=None, start_date=START, params=COMMON):
    even = SlurmOperator(
        task_id="compute",
        command='# {{ params.nonce }}\ni=$SLURM_ARRAY_TASK_ID\nif [ $((i % 2)) = 0 ] && [ ! -e "flag-$i" ]; then\n'
        '  : > "flag-$i"; echo "index $i breaks once" >&2; exit 3\nfi\necho "index $i ok"',
        array_size=40,
        array_parallelism=4,
        sbatch_options={"comment": "{{ params.nonce }}", "time": "00:05:00", "mem": "32M"},
        retries=1,
        retry_delay=timedelta(seconds=0),
        stream_logs=False,
        **FAST,
    )
    record(even.output)

# A plain program with one templated argument: the value must arrive as one literal argument.
with DAG("cb_slurm_hostile", schedule=None, start_date=START, params={**COMMON, "value": Param("x")}):
    hostile = SlurmOperator(
        task_id="compute",
        command=["sh", "-c", 'printf "%s" "$1" > value.txt', "sh", "{{ params.value }}", "{{ params.nonce }}"],
        stage_out=["value.txt"],
        local_output_dir="{{ params.outdir }}/fetched",
        sbatch_options={"comment": "{{ params.value }}"},
        **FAST,
    )
    record(hostile.output)

# A job that sleeps: timeouts, cancellation, restarts of sshd/slurmctld, and a killed worker.
with DAG(
    "cb_slurm_sleep",
    schedule=None,
    start_date=START,
    params={**COMMON, "seconds": Param(5, type="integer"), "time": Param("00:05:00", type="string")},
):
    sleeper = SlurmOperator(
        task_id="compute",
        command="# {{ params.nonce }}\necho started; sleep {{ params.seconds }}; echo finished",
        sbatch_options={"time": "{{ params.time }}", "comment": "{{ params.nonce }}"},
        **FAST,
    )
    record(sleeper.output)

# Options the cluster refuses (a partition it does not have): the pre-flight fails the task at once, no retry.
with DAG("cb_slurm_refused", schedule=None, start_date=START, params={**COMMON, "partition": Param("debug")}):
    refused = SlurmOperator(
        task_id="compute",
        command="# {{ params.nonce }}\necho never",
        sbatch_options={"partition": "{{ params.partition }}", "comment": "{{ params.nonce }}"},
        retries=2,
        retry_delay=timedelta(seconds=0),
        **FAST,
    )

# Jobs submitted elsewhere (by the test, with plain sbatch): the sensor waits for them.
with DAG("cb_slurm_sensor", schedule=None, start_date=START, params={**COMMON, "job_ids": Param("0", type="string")}):
    watch = SlurmJobSensor(task_id="watch", job_ids="{{ params.job_ids }}", poll_interval=1.0)
    record(watch.output)

# The same wait, in the worker instead of the triggerer (deferrable=False).
with DAG("cb_slurm_blocking", schedule=None, start_date=START, params=COMMON):
    blocking = SlurmOperator(
        task_id="compute",
        command='# {{ params.nonce }}\necho "blocking index $CORPUSBRIDGE_INDEX"',
        array_size=2,
        deferrable=False,
        **FAST,
    )
    record(blocking.output)
