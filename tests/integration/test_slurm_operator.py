"""SlurmOperator end to end: Airflow `dag.test()` runs (child processes) against the real sandbox.

Every scenario starts when this module starts (one child process each), so that the slow ones overlap:
TIMEOUT alone needs ~90 s of wall time. Outages hit the shared sandbox, so they are staged in one fixture,
in order, after the quick scenarios are done; the tests then check each run's outcome.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slurm_harness import REPO, DagRunProcess, jobs_with_comment, launch, make_db_template, remote, wait_for_state

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.airflow]


@dataclass
class Scenarios:
    runs: dict[str, DagRunProcess]
    conn: str
    tmp: Path
    db_template: Path
    hostile: str
    canary: str
    foreign: str
    reattach_when: str

    def relaunch(self, name: str, conf: dict) -> DagRunProcess:
        """The same DAG run again (same nonce and run id): what a rerun after a worker crash looks like."""
        first = self.runs[name]
        return launch(
            first.dag_id,
            self.conn,
            self.tmp,
            conf,
            nonce=first.nonce,
            run_after=self.reattach_when,
            db_template=self.db_template,
        )


@pytest.fixture(scope="module")
def scenarios(hpc_sandbox) -> Iterator[Scenarios]:
    """Start every scenario at once, so that the slow ones (TIMEOUT ~90 s) overlap with the rest."""
    # Not tmp_path: pytest prunes old basetemps, and another pytest session on this box could prune ours mid-run.
    tmp = Path(tempfile.mkdtemp(prefix="cb-slurm-runs-"))
    conn = hpc_sandbox.connection_json()
    template = make_db_template(tmp)
    indir = tmp / "inputs"
    indir.mkdir()
    for i in range(4):
        (indir / f"in {i}.txt").write_bytes(b"x" * (10 + i))
    canary = f"{hpc_sandbox.scratch_root}/pwned-{uuid.uuid4().hex[:8]}"
    hostile = f"a; touch {canary}; $(touch {canary}) `touch {canary}` 'q\" \\ end"
    when = "2026-03-04T05:06:07+00:00"
    foreign = remote(hpc_sandbox, "sbatch --parsable --array=0-1 --output=/dev/null --wrap 'sleep 3'").strip()

    def start(dag_id: str, conf: dict | None = None, **kwargs) -> DagRunProcess:
        return launch(dag_id, conn, tmp, conf, db_template=template, **kwargs)

    runs = {
        "timeout": start("cb_slurm_sleep", {"seconds": 300, "time": "00:00:01"}),
        "outage": start("cb_slurm_sleep", {"seconds": SLEEP}),
        "killed": start("cb_slurm_sleep", {"seconds": SLEEP}, run_after=when),
        "cancel": start("cb_slurm_sleep", {"seconds": 300}),
        "array": start("cb_slurm_array", {"indir": str(indir)}),
        "retry": start("cb_slurm_retry"),
        "hostile": start("cb_slurm_hostile", {"value": hostile}),
        "sensor": start("cb_slurm_sensor", {"job_ids": foreign}),
        "blocking": start("cb_slurm_blocking"),
        "refused": start("cb_slurm_refused", {"partition": "no-such-partition"}),
    }
    yield Scenarios(runs, conn, tmp, template, hostile, canary, foreign, when)
    for run in runs.values():
        run.kill()
    shutil.rmtree(tmp, ignore_errors=True)


# Long enough that the sleeping jobs outlast the quick scenarios and both outages on a busy 2-core box.
SLEEP = 100


def by_index(states: dict[str, str]) -> dict[str, str]:
    """The XCom `states` (`{"<job>_<index>": state}`) keyed by index alone."""
    return {label.rsplit("_", 1)[1]: state for label, state in states.items()}


def deferred(sandbox, run: DagRunProcess) -> None:
    """Return once the job runs and the task waits in its trigger."""
    wait_for_state(sandbox, run.nonce, "RUNNING")
    deadline = time.monotonic() + 90
    while "running trigger in line" not in run.log():
        assert time.monotonic() < deadline, f"{run.dag_id} never deferred:\n{run.log()[-2000:]}"
        time.sleep(0.3)


def restart_sandbox() -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "hpc-sandbox.sh"), "up"], check=True, capture_output=True, timeout=120
    )


def pid_from(path: Path) -> int:
    return int(path.read_text().strip())


def wait_for_log(run: DagRunProcess, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while text not in run.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def stop_slurmctld(sandbox) -> None:
    os.kill(pid_from(sandbox.root / "run" / "slurmctld.pid"), signal.SIGTERM)


def stop_sshd(sandbox) -> None:
    """The listener and every session it serves, ControlMasters' included (by pid, from the sandbox's pid file)."""
    listener = pid_from(sandbox.root / "run" / "sshd.pid")
    sessions = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(listener)], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in [listener, *map(int, sessions)]:
        os.kill(pid, signal.SIGTERM)


@dataclass
class Disruptions:
    killed_job: str
    rerun: DagRunProcess
    alive_through_outage: bool


@pytest.fixture(scope="module")
def disruptions(hpc_sandbox, scenarios) -> Disruptions:
    """Kill a worker, stop slurmctld for 25 s, then sshd for 5 s, while two sleeping jobs are being waited on.

    The quick scenarios finish first: an outage during a task's submission or stage-out fails that try (an
    Airflow retry re-attaches), which is a different story from the one tested here.
    """
    for name in ("array", "retry", "hostile", "sensor", "blocking"):
        scenarios.runs[name].proc.wait(timeout=300)
    outage, killed = scenarios.runs["outage"], scenarios.runs["killed"]
    deferred(hpc_sandbox, outage)
    deferred(hpc_sandbox, killed)
    killed.kill()
    (job_id,) = jobs_with_comment(hpc_sandbox, killed.nonce)
    stop_slurmctld(hpc_sandbox)
    # Restart only once the waiting task has seen the outage (squeue retries for ~10-20 s before it fails).
    seen_ctld = wait_for_log(outage, "Unable to contact slurm controller", timeout=90)
    alive = outage.proc.poll() is None
    restart_sandbox()
    stop_sshd(hpc_sandbox)
    seen_sshd = wait_for_log(outage, "Connection refused", timeout=60)
    alive = alive and outage.proc.poll() is None
    restart_sandbox()
    assert seen_ctld and seen_sshd, f"outages not observed (slurmctld {seen_ctld}, sshd {seen_sshd})"
    return Disruptions(job_id, scenarios.relaunch("killed", {"seconds": SLEEP}), alive)


def test_slurmctld_and_sshd_restarted_mid_wait(disruptions, scenarios) -> None:
    result = scenarios.runs["outage"].wait()
    assert disruptions.alive_through_outage, "the task ended while the cluster was unreachable"
    assert result["state"] == "success", result["log"][-3000:]
    log = result["log"]
    assert "Unable to contact slurm controller" in log  # slurmctld down: seen, not read as finished
    assert "Connection refused" in log  # sshd down, ControlMaster gone: seen, then a new master
    assert by_index(result["xcom"]["states"]) == {"0": "COMPLETED"}
    assert "finished" in log  # the job's own stdout, streamed after both outages


def test_worker_killed_mid_wait_then_rerun_reattaches(hpc_sandbox, disruptions, scenarios) -> None:
    result = disruptions.rerun.wait()
    job_id = disruptions.killed_job
    assert result["state"] == "success", result["log"][-3000:]
    assert f"re-attached to SLURM job {job_id}" in result["log"]
    assert list(jobs_with_comment(hpc_sandbox, scenarios.runs["killed"].nonce)) == [job_id]  # never resubmitted
    assert result["xcom"]["job_ids"] == [job_id]


# --- the background scenarios -------------------------------------------------------------------------------


def test_array_stages_in_computes_and_stages_out(scenarios) -> None:
    run = scenarios.runs["array"]
    result = run.wait()
    assert result["state"] == "success", result["log"][-3000:]
    xcom = result["xcom"]
    assert by_index(xcom["states"]) == {str(i): "COMPLETED" for i in range(4)}
    fetched = {Path(p).name: Path(p).read_text().strip() for p in xcom["outputs"]}
    assert fetched == {f"count-{i}.txt": str(10 + i) for i in range(4)}  # each index read its own staged file
    assert all(Path(p).parent == run.outdir / "fetched" for p in xcom["outputs"])
    for i in range(4):  # stdout and stderr of every index reached the task log
        assert f"index {i} counted" in result["log"] and f"note from {i}" in result["log"]


def test_failing_index_then_retry_reruns_only_that_index(hpc_sandbox, scenarios) -> None:
    run = scenarios.runs["retry"]
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
    assert result["xcom"]["states"] == {
        **{f"{first}_{i}": "COMPLETED" for i in (0, 1, 3)},
        f"{second}_2": "COMPLETED",
    }


def test_hostile_parameter_arrives_literally(hpc_sandbox, scenarios) -> None:
    run = scenarios.runs["hostile"]
    result = run.wait()
    assert result["state"] == "success", result["log"][-3000:]
    (value_file,) = result["xcom"]["outputs"]
    assert Path(value_file).read_text() == scenarios.hostile
    assert remote(hpc_sandbox, f"ls {scenarios.canary} 2>/dev/null || true").strip() == ""


def test_cancelled_job_fails_the_task_naming_the_state(hpc_sandbox, scenarios) -> None:
    run = scenarios.runs["cancel"]
    found = wait_for_state(hpc_sandbox, run.nonce, "RUNNING")
    remote(hpc_sandbox, "scancel " + " ".join(found))
    result = run.wait()
    assert result["state"] == "failed"
    assert "did not complete: [0]" in result["log"] and "CANCELLED" in result["log"]


def test_timeout_names_the_state_and_what_to_change(hpc_sandbox, scenarios) -> None:
    run = scenarios.runs["timeout"]
    result = run.wait(timeout=240)
    assert result["state"] == "failed"
    assert "TIMEOUT" in result["log"] and "raise sbatch_options['time']" in result["log"]
    assert "CANCELLED AT" in result["log"] and "DUE TO TIME LIMIT" in result["log"]  # slurmstepd's line, streamed


def test_options_the_cluster_refuses_fail_the_task_at_once_without_retries(scenarios) -> None:
    result = scenarios.runs["refused"].wait()
    assert result["state"] == "failed"
    log = result["log"]
    assert "Invalid partition name specified" in log and "so no retry" in log, log[-3000:]
    assert log.count("sbatch --test-only (pre-flight) for job") == 1, "retried although retries=2 cannot help"


def test_sensor_waits_for_jobs_submitted_elsewhere(scenarios) -> None:
    result = scenarios.runs["sensor"].wait()
    assert result["state"] == "success", result["log"][-3000:]
    job = scenarios.foreign
    assert result["xcom"]["states"] == {f"{job}_0": "COMPLETED", f"{job}_1": "COMPLETED"}


def test_non_deferrable_waits_in_the_worker(scenarios) -> None:
    result = scenarios.runs["blocking"].wait()
    assert result["state"] == "success", result["log"][-3000:]
    assert "running trigger in line" not in result["log"]  # never deferred
    assert by_index(result["xcom"]["states"]) == {"0": "COMPLETED", "1": "COMPLETED"}
    assert "blocking index 1" in result["log"]
