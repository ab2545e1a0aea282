"""SlurmOperator end to end: Airflow `dag.test()` runs (child processes) against the real sandbox.

The slow scenarios (TIMEOUT needs ~90 s of wall time, cancellation, the basic array, retry, hostile input)
start together when this module starts and are checked by the tests below; the disruption tests (killed
worker, sshd and slurmctld restarts) run one after another meanwhile, each with its own sleeping job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from slurm_harness import REPO, DagRunProcess, jobs_with_comment, launch, remote, wait_for_state

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.airflow]


@pytest.fixture(scope="module")
def background(hpc_sandbox, tmp_path_factory) -> dict[str, DagRunProcess]:
    """Start the long-running scenarios at once, so that they overlap."""
    tmp = tmp_path_factory.mktemp("slurm-runs")
    conn = hpc_sandbox.connection_json()
    indir = tmp / "inputs"
    indir.mkdir()
    for i in range(4):
        (indir / f"in {i}.txt").write_bytes(b"x" * (10 + i))
    canary = f"{hpc_sandbox.scratch_root}/pwned-{uuid.uuid4().hex[:8]}"
    hostile = f"a; touch {canary}; $(touch {canary}) `touch {canary}` 'q\" \\ end"
    runs = {
        "timeout": launch("cb_slurm_sleep", conn, tmp, {"seconds": 300, "time": "00:00:01"}),
        "cancel": launch("cb_slurm_sleep", conn, tmp, {"seconds": 300}),
        "array": launch("cb_slurm_array", conn, tmp, {"indir": str(indir)}),
        "retry": launch("cb_slurm_retry", conn, tmp),
        "hostile": launch("cb_slurm_hostile", conn, tmp, {"value": hostile}),
    }
    runs["hostile"].value = hostile  # type: ignore[attr-defined]
    runs["hostile"].canary = canary  # type: ignore[attr-defined]
    yield runs
    for run in runs.values():
        run.kill()


def sleeper_running(sandbox, tmp: Path, seconds: int, **kwargs) -> DagRunProcess:
    """A sleeping job whose task is deferred (the trigger is polling) by the time this returns."""
    run = launch("cb_slurm_sleep", sandbox.connection_json(), tmp, {"seconds": seconds}, **kwargs)
    wait_for_state(sandbox, run.nonce, "RUNNING")
    deadline = time.monotonic() + 60
    while "running trigger in line" not in run.log() and time.monotonic() < deadline:
        time.sleep(0.3)
    return run


def restart_sandbox() -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "hpc-sandbox.sh"), "up"], check=True, capture_output=True,
                   timeout=120)


def pid_from(path: Path) -> int:
    return int(path.read_text().strip())


# --- disruptions (run while the background scenarios proceed) ---------------------------------------------


def test_worker_killed_mid_wait_then_rerun_reattaches(hpc_sandbox, background, tmp_path) -> None:
    nonce, when = uuid.uuid4().hex[:12], "2026-03-04T05:06:07+00:00"
    # Long enough to be still running when the second worker (a cold Airflow process on a busy box) gets there.
    first = sleeper_running(hpc_sandbox, tmp_path, 45, nonce=nonce, run_after=when)
    first.kill()
    (job_id,) = jobs_with_comment(hpc_sandbox, nonce)
    second = launch("cb_slurm_sleep", hpc_sandbox.connection_json(), tmp_path, {"seconds": 45}, nonce=nonce,
                    run_after=when)
    result = second.wait()
    assert result["state"] == "success", result["log"][-3000:]
    assert f"re-attached to SLURM job {job_id}" in result["log"]
    assert list(jobs_with_comment(hpc_sandbox, nonce)) == [job_id]  # still one job: nothing was resubmitted
    assert result["xcom"]["job_ids"] == [job_id]


def test_sshd_restarted_mid_poll(hpc_sandbox, background, tmp_path) -> None:
    run = sleeper_running(hpc_sandbox, tmp_path, 15)
    listener = pid_from(hpc_sandbox.root / "run" / "sshd.pid")
    sessions = subprocess.run(["ps", "-o", "pid=", "--ppid", str(listener)], capture_output=True, text=True,
                              check=False).stdout.split()
    for pid in [listener, *map(int, sessions)]:  # the listener and every session, ControlMasters' included
        os.kill(pid, signal.SIGTERM)
    time.sleep(4)
    restart_sandbox()
    result = run.wait()
    assert result["state"] == "success", result["log"][-3000:]
    assert "SLURM unreachable" in result["log"]  # the outage was seen, and was not read as "finished"
    assert result["xcom"]["states"] == {"0": "COMPLETED"}
    assert "finished" in result["log"]  # the job's own stdout was streamed, before and after the outage


def test_slurmctld_restarted_mid_job(hpc_sandbox, background, tmp_path) -> None:
    run = sleeper_running(hpc_sandbox, tmp_path, 15)
    os.kill(pid_from(hpc_sandbox.root / "run" / "slurmctld.pid"), signal.SIGTERM)
    time.sleep(4)
    restart_sandbox()
    result = run.wait()
    assert result["state"] == "success", result["log"][-3000:]
    assert "SLURM unreachable" in result["log"] and "Unable to contact slurm controller" in result["log"]
    assert result["xcom"]["states"] == {"0": "COMPLETED"}


# --- the background scenarios -------------------------------------------------------------------------------


def test_array_stages_in_computes_and_stages_out(background) -> None:
    run = background["array"]
    result = run.wait()
    assert result["state"] == "success", result["log"][-3000:]
    xcom = result["xcom"]
    assert xcom["states"] == {str(i): "COMPLETED" for i in range(4)}
    fetched = {Path(p).name: Path(p).read_text().strip() for p in xcom["outputs"]}
    assert fetched == {f"count-{i}.txt": str(10 + i) for i in range(4)}  # each index read its own staged file
    assert all(Path(p).parent == run.outdir / "fetched" for p in xcom["outputs"])
    for i in range(4):  # stdout and stderr of every index reached the task log
        assert f"index {i} counted" in result["log"] and f"note from {i}" in result["log"]


def test_failing_index_then_retry_reruns_only_that_index(hpc_sandbox, background) -> None:
    run = background["retry"]
    result = run.wait()
    assert result["state"] == "success", result["log"][-3000:]
    assert result["tis"]["compute"] == ["success", 2]
    log = result["log"]
    assert "1 SLURM index(es) did not complete: [2]" in log and "FAILED exit 3" in log
    assert "index 2 breaks once" in log  # the stderr tail is in the failure message
    first, second = sorted(jobs_with_comment(hpc_sandbox, run.nonce), key=int)
    assert sorted(jobs_with_comment(hpc_sandbox, run.nonce)[second]) == [f"{second}_2:COMPLETED"]
    assert f"submitted SLURM job {second} for indices [2]" in log
    assert result["xcom"]["job_ids"] == sorted([first, second])
    assert result["xcom"]["states"] == {str(i): "COMPLETED" for i in range(4)}


def test_hostile_parameter_arrives_literally(hpc_sandbox, background) -> None:
    run = background["hostile"]
    result = run.wait()
    assert result["state"] == "success", result["log"][-3000:]
    (value_file,) = result["xcom"]["outputs"]
    assert Path(value_file).read_text() == run.value  # type: ignore[attr-defined]
    assert remote(hpc_sandbox, f"ls {run.canary} 2>/dev/null || true").strip() == ""  # type: ignore[attr-defined]


def test_cancelled_job_fails_the_task_naming_the_state(hpc_sandbox, background) -> None:
    run = background["cancel"]
    found = wait_for_state(hpc_sandbox, run.nonce, "RUNNING")
    remote(hpc_sandbox, "scancel " + " ".join(found))
    result = run.wait()
    assert result["state"] == "failed"
    assert "did not complete: [0]" in result["log"] and "CANCELLED" in result["log"]


def test_timeout_names_the_state_and_what_to_change(hpc_sandbox, background) -> None:
    run = background["timeout"]
    result = run.wait(timeout=240)
    assert result["state"] == "failed"
    assert "TIMEOUT" in result["log"] and "raise sbatch_options['time']" in result["log"]
    assert "CANCELLED AT" in result["log"] and "DUE TO TIME LIMIT" in result["log"]  # slurmstepd's line, streamed
