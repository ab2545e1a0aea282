"""sacct read live (slurmdbd + MariaDB in the sandbox) through the library's accounting path.

`monitor.exit_details(..., use_sacct=True)` silently falls back to scontrol when sacct fails, so each test also
reads `commands.sacct_argv` + `parsing.parse_sacct` directly: a pass means sacct itself answered. A job older
than MinJobAge (the `hpc_sandbox_aged` instance keeps finished jobs 5 s) is gone from squeue and scontrol and is
still known to sacct.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from corpusbridge.hpc import commands, monitor, parsing
from corpusbridge.hpc.openssh import OpenSSHTransport
from corpusbridge.hpc.states import classify

pytestmark = [pytest.mark.slurm, pytest.mark.integration]

# Waits, not assertions on durations: slurmctld sends a job's end to slurmdbd asynchronously, and purges jobs
# older than MinJobAge on its own schedule (every few tens of seconds).
RECORD_WAIT = 120.0
PURGE_WAIT = 300.0


def _sbatch(transport: OpenSSHTransport, *options: str) -> str:
    result = transport.run(["sbatch", "--parsable", "--output=/dev/null", *options])
    assert result.ok, result.stderr
    return result.stdout.strip().split(";")[0]


def _sacct(transport: OpenSSHTransport, job_ids: list[str]) -> list[Any]:
    result = transport.run(commands.sacct_argv(job_ids))
    assert result.ok, f"sacct failed: {result.stderr.strip()}"
    return parsing.parse_sacct(result.stdout)


def _wait_recorded(transport: OpenSSHTransport, job_ids: list[str], rows_expected: int) -> list[Any]:
    """sacct rows once every one is terminal (the controller reports a job's end to slurmdbd a moment later)."""
    deadline = time.monotonic() + RECORD_WAIT
    while True:
        rows = _sacct(transport, job_ids)
        if len(rows) == rows_expected and all(classify(r.state).terminal for r in rows):
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"sacct never recorded {job_ids} as finished; last rows: {rows}")
        time.sleep(1)


def _with_accounting(transport: OpenSSHTransport, version: str) -> None:
    if not monitor.sacct_available(transport):
        pytest.skip(
            f"the SLURM {version} sandbox runs without slurmdbd: it was started before accounting was added; "
            "`scripts/hpc-sandbox.sh down && up` (or `up` with HPC_SANDBOX_APPLY=idle-restart) gives it accounting"
        )


@pytest.fixture(scope="module")
def aged_transport(hpc_sandbox_aged) -> Iterator[OpenSSHTransport]:
    transport = OpenSSHTransport(hpc_sandbox_aged.settings())
    yield transport
    transport.close()


def test_sacct_reads_final_states_and_exit_codes(hpc_sandbox, openssh_transport) -> None:
    _with_accounting(openssh_transport, hpc_sandbox.version)
    failed = _sbatch(openssh_transport, "--wrap", "exit 3")
    array = _sbatch(openssh_transport, "--array=0-3", "--wrap", 'test "$SLURM_ARRAY_TASK_ID" != 2 || exit 4')
    rows = _wait_recorded(openssh_transport, [failed, array], rows_expected=5)
    seen = {(r.job_id, r.index): (r.state, r.exit_code) for r in rows}
    assert seen == {
        (failed, None): ("FAILED", 3),
        (array, 0): ("COMPLETED", 0),
        (array, 1): ("COMPLETED", 0),
        (array, 2): ("FAILED", 4),
        (array, 3): ("COMPLETED", 0),
    }
    details = monitor.exit_details(openssh_transport, [failed, array], use_sacct=True)
    assert {(r.job_id, r.index): (r.state, r.exit_code) for r in details} == seen


def test_sacct_still_knows_a_job_older_than_min_job_age(hpc_sandbox_aged, aged_transport) -> None:
    _with_accounting(aged_transport, hpc_sandbox_aged.version)
    job = _sbatch(aged_transport, "--wrap", "exit 5")
    other = _sbatch(aged_transport, "--wrap", "true")  # two ids: squeue -j with ONE unknown id fails instead
    _wait_recorded(aged_transport, [job, other], rows_expected=2)
    deadline = time.monotonic() + PURGE_WAIT
    while monitor.poll(aged_transport, [job, other]).rows:
        if time.monotonic() > deadline:
            pytest.fail(f"jobs {job}, {other} still in squeue after {PURGE_WAIT:.0f} s with MinJobAge=5")
        time.sleep(2)
    gone = aged_transport.run(commands.scontrol_show_job_argv(job))
    assert not gone.ok and "Invalid job id" in gone.stderr  # the controller forgot it: only accounting remains
    rows = monitor.exit_details(aged_transport, [job], use_sacct=True)
    assert [(r.job_id, r.index, r.state, r.exit_code) for r in rows] == [(job, None, "FAILED", 5)]


def test_exit_codes_right_after_the_end_come_from_the_controller(hpc_sandbox, openssh_transport) -> None:
    """slurmdbd hears of a job's end a moment after squeue shows it: for about a second sacct still prints the
    array's unsplit record (`<job>|allocation|PENDING|0:0`) and no row for the failed index. Asked at that moment,
    exit_details must still give every index its state and exit code (the retry scenario's message lost
    `exit 3` this way with accounting on)."""
    _with_accounting(openssh_transport, hpc_sandbox.version)
    array = _sbatch(openssh_transport, "--array=0-3", "--wrap", 'test "$SLURM_ARRAY_TASK_ID" != 2 || exit 4')
    deadline = time.monotonic() + RECORD_WAIT
    while not (
        len(rows := monitor.poll(openssh_transport, [array]).rows) == 4
        and all(classify(r.state).terminal for r in rows)
    ):
        assert time.monotonic() < deadline, f"array {array} never finished: {rows}"
        time.sleep(0.1)
    details = monitor.exit_details(openssh_transport, [array], use_sacct=True)
    assert {(r.job_id, r.index): (r.state, r.exit_code) for r in details} == {
        (array, 0): ("COMPLETED", 0),
        (array, 1): ("COMPLETED", 0),
        (array, 2): ("FAILED", 4),
        (array, 3): ("COMPLETED", 0),
    }
