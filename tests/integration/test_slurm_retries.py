"""Retries and clears against the real sandbox: what a long array and a cleared deferred task look like.

- A 40-index array whose even indices fail once: its retry resubmits those 20 indices (SLURM prints their
  throttled remainder in step form) and completes, with no "unreachable" warning and no unreadable line.
- A deferred task cleared while its job runs: the new try re-attaches; when the old trigger then cancels
  the job (it cannot tell a clear from a stop here, as when the task state cannot be read), the new try sees
  the cancel marker and resubmits those indices instead of failing with CANCELLED.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from slurm_harness import jobs_with_comment, launch, make_db_template, remote, wait_for_state

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.airflow]


def by_index(states: dict[str, str]) -> dict[int, str]:
    return {int(label.rsplit("_", 1)[1]): state for label, state in states.items()}


def test_forty_indices_whose_even_ones_fail_once_complete_on_the_retry(hpc_sandbox) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cb-slurm-retry40-"))
    try:
        run = launch("cb_slurm_retry_even", hpc_sandbox.connection_json(), tmp, db_template=make_db_template(tmp))
        result = run.wait(timeout=480)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log = result["log"]
    assert result["state"] == "success", log[-3000:]
    assert result["tis"]["compute"] == ["success", 2]
    evens = list(range(0, 40, 2))
    assert f"20 SLURM index(es) did not complete: {evens}" in log
    first, second = sorted(jobs_with_comment(hpc_sandbox, run.nonce), key=int)
    assert f"submitted SLURM job {second} for indices {evens}" in log
    assert "unreachable" not in log.lower() and "cannot read" not in log
    assert by_index(result["xcom"]["states"]) == dict.fromkeys(range(40), "COMPLETED")
    assert {label.split("_")[0] for label in result["xcom"]["states"]} == {first, second}


@pytest.fixture
def clear_context(hpc_sandbox, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", hpc_sandbox.connection_json())
    nonce = uuid.uuid4().hex[:12]
    pushed: dict[str, object] = {}  # the XComs the operator pushes itself (the job ids for the SLURM job link)
    ti = SimpleNamespace(
        dag_id="cb_slurm_clear_test",
        task_id="compute",
        map_index=-1,
        xcom_push=lambda key, value: pushed.update({key: value}),
    )
    yield nonce, {"ti": ti, "run_id": f"manual__{nonce}", "pushed": pushed}
    found = jobs_with_comment(hpc_sandbox, nonce)
    if found:
        remote(hpc_sandbox, "scancel " + " ".join(found), check=False)


def operator(nonce: str):
    """A fresh operator per try, as each try runs in a new worker process."""
    from corpusbridge_airflow.operators.slurm import SlurmOperator

    return SlurmOperator(
        task_id="compute",
        # Sleeps until the test drops `release` into the scratch dir, so the old job is cancelled mid-run.
        command=f'# {nonce}\nuntil [ -e release ]; do sleep 1; done; echo "index $CORPUSBRIDGE_INDEX ran"',
        array_size=2,
        sbatch_options={"comment": nonce, "time": "00:03:00"},
        poll_interval=0.5,
        unreachable_budget=120,
        deferrable=True,
    )


def deferred_trigger(op, context, method=None, event=None):
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferral:
        if method is None:
            op.execute(context)
        else:
            method(context, event)
    return deferral.value.trigger


def test_clearing_a_deferred_task_gives_the_new_try_a_working_job(hpc_sandbox, clear_context, caplog, capfd) -> None:
    import logging

    from corpusbridge.hpc.events import SlurmEvent
    from corpusbridge_airflow.triggers.slurm import wait_in_worker

    nonce, context = clear_context
    with caplog.at_level(logging.INFO):
        old = deferred_trigger(operator(nonce), context)
    (old_job,) = old.jobs
    assert context["pushed"]["slurm_job_ids"] == [old_job]  # what the task's SLURM job link opens while it waits
    assert context["pushed"]["slurm_scratch_dir"] == old.scratch_dir  # where the run's teardown marks a cancel
    # Where operator logs land depends on whether Airflow configured structlog in this session: read both.
    logged = caplog.text + "".join(capfd.readouterr())
    # The pre-flight line names the job submitted, not the id `sbatch --test-only` consumed.
    preflight = f"submitted SLURM job {old_job} for indices [0, 1]; pre-flight (sbatch --test-only): job {old_job} "
    assert preflight + "would start at" in logged
    wait_for_state(hpc_sandbox, nonce, "RUNNING")
    new_try = operator(nonce)
    attached = deferred_trigger(new_try, context)  # the clear's new try, while the old trigger still waits
    assert attached.jobs == old.jobs  # re-attached, not submitted twice
    asyncio.run(old.on_kill())  # the old trigger, killed by the clear, cancels (with its cancel marker)
    event = wait_in_worker(attached)
    assert {o.state for o in event.outcomes} == {"CANCELLED"}

    resubmitted = deferred_trigger(new_try, context, new_try.execute_complete, event.to_dict())
    assert set(resubmitted.jobs).isdisjoint(old.jobs) and list(resubmitted.jobs.values()) == [[0, 1]]
    remote(hpc_sandbox, f"touch {resubmitted.scratch_dir}/release")
    final: SlurmEvent = wait_in_worker(resubmitted)
    xcom = new_try.execute_complete(context, final.to_dict())
    assert by_index(xcom["states"]) == {0: "COMPLETED", 1: "COMPLETED"}
    assert set(xcom["job_ids"]).isdisjoint(old.jobs)
