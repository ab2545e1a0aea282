"""`corpusbridge run --backend slurm` through the loopback SLURM + sshd sandbox, then an identical rerun."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from corpusbridge.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

CORPORA = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main(["run", *argv, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    return out


def test_run_slurm_reads_the_connection_from_the_environment_and_submits_once(
    db_uri: str, hpc_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    # a scratch root of its own: the same corpus gives the same batch and work key, and a scratch left by an earlier
    # session would be re-attached to (rightly: no second submission), leaving nothing for this test to submit
    connection = json.loads(hpc_sandbox.connection_json())
    extra = connection["extra"] if isinstance(connection["extra"], dict) else json.loads(connection["extra"])
    connection["extra"] = extra | {"scratch_root": f"{extra['scratch_root']}/run-test-{uuid.uuid4().hex[:8]}"}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", json.dumps(connection))
    # the sandbox's node is this machine: the payload runs with this interpreter's installed corpusbridge
    argv = ["--backend", "slurm", "--source", str(CORPORA), "--db", db_uri, "--shard-rows", "15",
            "--no-embeddings", "--slurm-python", sys.executable]  # fmt: skip
    first = _run(capsys, *argv)
    assert first["docs_exported"] == first["docs_processed"] == first["docs_loaded"] > 0
    assert len(first["job_ids"]) == 1 and first["shards"] > 1 and first["reconciliation"]["ok"]
    import psycopg

    with psycopg.connect(db_uri) as conn:  # where each shard ran, on its ledger row: job <array>_<index>, the node
        where = conn.execute("SELECT shard, backend, slurm_job, host FROM load_ledger ORDER BY shard").fetchall()
    job = first["job_ids"][0]
    assert [(s, b, j) for s, b, j, _ in where] == [(s, "slurm", f"{job}_{s}") for s, _, _, _ in where]
    assert all(host for *_, host in where)

    again = _run(capsys, *argv)
    assert (again["docs_exported"], again["docs_processed"], again["docs_loaded"], again["job_ids"]) == (0, 0, 0, [])


def test_run_slurm_without_a_connection_says_what_to_set(db_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", raising=False)
    with pytest.raises(SystemExit, match="set AIRFLOW_CONN_CORPUSBRIDGE_HPC"):
        main(["run", "--backend", "slurm", "--db", db_uri])
