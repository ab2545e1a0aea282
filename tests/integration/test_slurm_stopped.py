"""The teardown's cancel decision against the real sandbox (no Airflow): only the live job of a stopped task is
cancelled, with its marker; a finished job and a waiting task's job are left alone."""

from __future__ import annotations

import time
import uuid

import pytest

from corpusbridge.hpc import jobs, monitor, naming, stopped

pytestmark = [pytest.mark.integration, pytest.mark.slurm]


def submit(sandbox, transport, command: str) -> tuple[str, str]:
    key = naming.WorkKey("stopped_test", "t", uuid.uuid4().hex, -1, "h")
    spec = jobs.JobSpec(command=command, scratch=naming.scratch_dir(sandbox.scratch_root, key),
                        job_name=naming.job_name(key), array_size=1, options={"time": "00:02:00"})  # fmt: skip
    (job,) = jobs.submit_or_reattach(transport, spec).submitted
    return job, spec.scratch


def wait_ended(transport, job: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while job in stopped.live_jobs(monitor.poll(transport, [job])):
        assert time.monotonic() < deadline, f"job {job} still live after {timeout:.0f}s"
        time.sleep(1.0)


def test_only_the_live_job_of_a_stopped_task_is_cancelled(hpc_sandbox, openssh_transport) -> None:
    marked, marked_scratch = submit(hpc_sandbox, openssh_transport, "sleep 60")
    waiting, waiting_scratch = submit(hpc_sandbox, openssh_transport, "sleep 60")
    ended, ended_scratch = submit(hpc_sandbox, openssh_transport, "true")
    try:
        wait_ended(openssh_transport, ended)
        tasks = [
            stopped.TaskJobs("compute_slurm[0]", "failed", (marked,), marked_scratch),  # marked failed mid-wait
            stopped.TaskJobs("compute_slurm[1]", "deferred", (waiting,), waiting_scratch),  # still waited on
            stopped.TaskJobs("neighbors_slurm[0]", "failed", (ended,), ended_scratch),  # failed with its job
        ]
        plan = stopped.cancel_stopped(openssh_transport, tasks)
        assert plan == [stopped.Cancellation("compute_slurm[0]", "failed", (marked,))]
        wait_ended(openssh_transport, marked)
        states = {row.job_id: row.state for row in monitor.poll(openssh_transport, [marked, waiting]).rows}
        assert states[marked] == "CANCELLED" and states[waiting] in ("PENDING", "RUNNING"), states
        assert jobs.read_markers(openssh_transport, marked_scratch).cancelled == {marked}, "a later try resubmits"
    finally:
        jobs.cancel(openssh_transport, [marked, waiting])
