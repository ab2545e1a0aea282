"""Helpers for the SLURM integration tests: DAG runs in child processes, and questions to the sandbox.

A DAG run in its own process lets slow scenarios (TIMEOUT, restarts) run side by side, and lets a test
SIGKILL a worker mid-wait exactly as a crash would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "tests" / "dags" / "slurm" / "harness" / "run_dag.py"
DAG_RUN_TIMEOUT = 240


@dataclass
class DagRunProcess:
    dag_id: str
    nonce: str
    outdir: Path
    result_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def wait(self, timeout: float = DAG_RUN_TIMEOUT) -> dict[str, Any]:
        """Wait for the run; return its result with `log` (the task logs) and `xcom` (what `record` wrote)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            tail = self.log()[-3000:]
            raise AssertionError(f"{self.dag_id} did not finish in {timeout}s; log tail:\n{tail}") from None
        if not self.result_path.exists():
            raise AssertionError(f"{self.dag_id} runner crashed (rc {self.proc.returncode}):\n{self.log()[-3000:]}")
        result = json.loads(self.result_path.read_text())
        result["log"] = self.log()
        xcom = self.outdir / "result.json"
        result["xcom"] = json.loads(xcom.read_text()) if xcom.exists() else None
        return result

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker (its process group): no on_kill, no cleanup, like a crashed host."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def make_db_template(tmp: Path) -> Path:
    """A migrated Airflow metadata DB that every run copies (instead of migrating its own)."""
    path = tmp / "airflow-template.db"
    subprocess.run(
        [sys.executable, str(RUNNER), "--init-db", str(path)], check=True, capture_output=True, timeout=DAG_RUN_TIMEOUT
    )
    return path


def launch(
    dag_id: str,
    connection_json: str,
    tmp: Path,
    conf: dict[str, Any] | None = None,
    *,
    nonce: str | None = None,
    run_after: str | None = None,
    db_template: Path | None = None,
) -> DagRunProcess:
    nonce = nonce or uuid.uuid4().hex[:12]
    outdir = tmp / f"{dag_id}-{nonce}-{uuid.uuid4().hex[:4]}"
    outdir.mkdir(parents=True)
    conf = {"nonce": nonce, "outdir": str(outdir), **(conf or {})}
    env = {**os.environ, "AIRFLOW_CONN_CORPUSBRIDGE_HPC": connection_json, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "include"), str(REPO / "plugins"), env.get("PYTHONPATH", "")])
    argv = [sys.executable, str(RUNNER), dag_id, str(outdir / "run.json"), "--conf", json.dumps(conf)]
    argv += ["--run-after", run_after] if run_after else []
    argv += ["--db-template", str(db_template)] if db_template else []
    log_path = outdir / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return DagRunProcess(dag_id, nonce, outdir, outdir / "run.json", log_path, proc)


def remote(sandbox: Any, command: str, check: bool = True) -> str:
    """A shell command on the sandbox over its own ssh config (not the code under test)."""
    proc = subprocess.run(sandbox.ssh_argv(command), capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{command!r} failed on the sandbox: {proc.stderr}")
    return proc.stdout


def jobs_with_comment(sandbox: Any, comment: str) -> dict[str, list[str]]:
    """`{array job id: [index states]}` of every job whose --comment is `comment` (the test's nonce)."""
    out = remote(sandbox, "squeue -h --states=all -o '%i|%T|%k'")
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        job, state, job_comment = line.split("|", 2)
        if job_comment == comment:
            found.setdefault(job.split("_", 1)[0], []).append(f"{job}:{state}")
    return found


def wait_for_state(sandbox: Any, comment: str, state: str, timeout: float = 120) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = jobs_with_comment(sandbox, comment)
        if any(entry.endswith(":" + state) for entries in found.values() for entry in entries):
            return found
        time.sleep(0.5)
    raise AssertionError(f"no job with comment {comment} reached {state} in {timeout}s: {found}")


def sshd_logins(sandbox: Any) -> int:
    """Successful SSH authentications so far: each is one new TCP connection + login."""
    return sandbox.sshd_log.read_text(errors="replace").count("Accepted publickey")
