"""Polling N deferred jobs costs one squeue and no new SSH login per tick, whatever N is."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from slurm_harness import sshd_logins

from corpusbridge.hpc import jobs
from corpusbridge_airflow.triggers import slurm_poller
from corpusbridge_airflow.triggers.slurm import SlurmJobTrigger

pytestmark = [pytest.mark.integration, pytest.mark.slurm]
CONN = "corpusbridge_hpc_polltest"


def submit_held(transport, count: int) -> list[str]:
    """`count` held jobs (never start, cost nothing) in one remote command."""
    name = f"cb-polltest-{uuid.uuid4().hex[:8]}"
    submit = f"sbatch --parsable --hold --job-name={name} --output=/dev/null --wrap true"
    loop = f"for i in $(seq {count}); do {submit}; done"
    result = transport.run(["sh", "-c", loop], timeout=120)
    ids = result.stdout.split()
    assert result.ok and len(ids) == count, result.stderr
    return ids


async def watch(transport, job_ids: list[str], ticks: int, logins_now) -> tuple[slurm_poller.PollerStats, int]:
    poller = slurm_poller.poller_for(CONN, lambda: transport, interval=0.3)
    triggers = [SlurmJobTrigger(slurm_conn_id=CONN, jobs={j: None}, poll_interval=0.3) for j in job_ids]
    tasks = [asyncio.create_task(anext(t.run())) for t in triggers]
    await poller.next_snapshot(0)  # first tick: the master is certainly open from here on
    start_ticks, start_calls = poller.stats.ticks, poller.stats.squeue_calls
    logins = await asyncio.to_thread(logins_now)
    while poller.stats.ticks < start_ticks + ticks:
        await poller.next_snapshot(poller.stats.ticks)
    new_logins = await asyncio.to_thread(logins_now) - logins
    assert not any(t.done() for t in tasks), "a held job was reported finished"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    calls = poller.stats.squeue_calls - start_calls
    assert calls == poller.stats.ticks - start_ticks
    return poller.stats, new_logins


@pytest.mark.parametrize("count", [1, 10, 100])
def test_one_squeue_and_no_new_login_per_tick(hpc_sandbox, openssh_transport, count: int) -> None:
    job_ids = submit_held(openssh_transport, count)
    try:
        stats, new_logins = asyncio.run(watch(openssh_transport, job_ids, 3, lambda: sshd_logins(hpc_sandbox)))
    finally:
        jobs.cancel(openssh_transport, job_ids)
    assert stats.max_jobs_per_call == count  # all N jobs were in that one squeue
    assert new_logins == 0  # every tick rode the existing ControlMaster
