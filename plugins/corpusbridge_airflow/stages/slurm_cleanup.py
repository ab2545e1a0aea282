"""The teardown after a run's SLURM tasks: cancel the jobs of a task that was stopped while they still ran.

Marking a deferred SLURM task failed or success cancels its jobs from the trigger's `on_kill`, but Airflow runs
`on_kill` only for a trigger the triggerer has started; a mark that lands first (the trigger row is then deleted
unused) leaves the job running with nobody waiting on it. This stage, run as a teardown once the SLURM tasks are
done, closes that gap whatever the timing (corpusbridge.hpc.stopped decides). In a normal run it is a no-op that
opens no SSH session: a task that returned its result has no job left running.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from corpusbridge.hpc import stopped
from corpusbridge_airflow import settings
from corpusbridge_airflow.links import JOB_IDS_XCOM, SCRATCH_XCOM

log = logging.getLogger(__name__)


def split_key(key: str, task_ids: Sequence[str]) -> tuple[str, int] | None:
    """`compute_slurm_3` -> ("compute_slurm", 3), `compute_slurm` -> ("compute_slurm", -1): how Airflow's
    `get_task_states` answer names task instances; None for a key of another task."""
    for task_id in sorted(task_ids, key=len, reverse=True):
        if key == task_id:
            return task_id, -1
        rest = key[len(task_id) + 1 :]
        if key.startswith(f"{task_id}_") and rest.isdigit():
            return task_id, int(rest)
    return None


def state_text(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def task_jobs(label: str, state: str | None, pushed: Any, scratch: Any, result: Any) -> stopped.TaskJobs:
    """One task instance's record, from its state and XComs (job ids and scratch at submission, its result)."""
    job_ids = tuple(str(j) for j in pushed) if isinstance(pushed, list) else ()
    return stopped.TaskJobs(
        label=label,
        state=state,
        job_ids=job_ids,
        scratch=scratch if isinstance(scratch, str) and scratch else None,
        reported=isinstance(result, Mapping),
    )


def recorded_tasks(ti: Any, task_ids: Sequence[str]) -> list[stopped.TaskJobs]:
    """This run's instances of `task_ids`; XComs are read only for the stopped ones (the rest cannot qualify)."""
    answer = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(task_ids), run_ids=[ti.run_id])
    records = []
    submitted: dict[str, bool] = {}  # per task: did any instance push job ids (one query for all map indexes)
    for key, value in sorted(answer.get(ti.run_id, {}).items()):
        found = split_key(key, task_ids)
        state = state_text(value)
        if found is None or state not in stopped.STOPPED_STATES:
            continue
        task_id, map_index = found
        if state == "skipped" and map_index < 0:
            continue  # a mapped SLURM task skipped before its expansion never ran
        if task_id not in submitted:
            # a pull of one map index that finds nothing logs an error; a pull of all of them does not
            submitted[task_id] = bool(ti.xcom_pull(task_ids=task_id, key=JOB_IDS_XCOM))
        if not submitted[task_id]:
            continue  # failed or stopped before it submitted anything
        label = task_id if map_index < 0 else f"{task_id}[{map_index}]"

        def pull(xcom_key: str, task_id: str = task_id, map_index: int = map_index) -> Any:
            return ti.xcom_pull(task_ids=task_id, key=xcom_key, map_indexes=map_index, default=None)

        pushed = pull(JOB_IDS_XCOM)
        if not pushed:
            continue
        records.append(task_jobs(label, state, pushed, pull(SCRATCH_XCOM), pull("return_value")))
    return records


def cancel_stopped_stage(ti: Any, task_ids: Sequence[str], conn_id: str = settings.HPC_CONN_ID) -> dict[str, Any]:
    """scancel what stopped SLURM tasks of this run left running; `{"cancelled": {task: [job ids]}}`.

    Skips (AirflowSkipException) when no SLURM task of the run submitted a job: a local or unconfigured run.
    """
    recorded = recorded_tasks(ti, task_ids)
    if not recorded:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(
            f"no SLURM job was submitted by {', '.join(task_ids)} in this run: nothing to cancel"
        )
    todo = stopped.candidates(recorded)
    if not todo:
        log.info("every SLURM task of this run reported its jobs' end (%s): nothing to cancel", ", ".join(task_ids))
        return {"cancelled": {}}
    if not settings.has_connection(conn_id):
        log.warning("jobs of stopped tasks %s may still run, but there is no Connection %s to cancel them with",
                    ", ".join(t.label for t in todo), conn_id)  # fmt: skip
        return {"cancelled": {}}
    from corpusbridge_airflow.hooks.slurm import SlurmHook

    hook = SlurmHook(conn_id)
    try:
        plan = stopped.cancel_stopped(hook.transport, todo)
    finally:
        hook.close()
    for item in plan:
        log.warning("%s is %s and nobody waits on its SLURM jobs any more: scancel %s",
                    item.label, item.state, ", ".join(item.job_ids))  # fmt: skip
    if not plan:
        log.info("the jobs of stopped tasks %s have all ended: nothing to cancel", ", ".join(t.label for t in todo))
    return {"cancelled": {item.label: list(item.job_ids) for item in plan}}
