"""Faults on the SLURM leg of `corpusbridge run` (issue 12 "Faults", issue 13; docs/faults.md), on the loopback SLURM
+ sshd sandbox and the embedded PostgreSQL.

Each test injects one real fault on the cluster side (a result file damaged on the cluster's disk, the scratch
folder deleted, an array index whose program exits non-zero once, the sshd process serving our own connection
killed with SIGKILL mid-upload), checks that the run fails naming what happened, then reruns and checks that every
row is loaded exactly once and the batch reconciles.

The seams used to time a fault (`compute.slurm._fetch`, `openssh.TarWriter`) are wrapped, never replaced: the real
function runs right after the fault. Every test has its own scratch root and its own ssh ControlMaster folder, so
that the shared sandbox's other users are never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from faults_support import fill, sanitized_corpus, small_disk

import corpusbridge.compute.slurm as compute_slurm
from corpusbridge.cli import main
from corpusbridge.compute.outputs import result_files
from corpusbridge.extract.results import ResultEntry
from corpusbridge.hpc import jobs

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.faults]

CORPORA = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"


@pytest.fixture
def cluster(hpc_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The sandbox connection with a scratch root and an ssh control folder of this test's own."""
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    control = Path(tempfile.mkdtemp(prefix="cbf-", dir="/tmp"))  # short: a socket path must stay under 104 bytes
    monkeypatch.setenv("CORPUSBRIDGE_SSH_CONTROL_DIR", str(control))
    connection = json.loads(hpc_sandbox.connection_json())
    extra = connection["extra"] if isinstance(connection["extra"], dict) else json.loads(connection["extra"])
    scratch_root = f"{extra['scratch_root']}/faults-{uuid.uuid4().hex[:8]}"
    connection["extra"] = extra | {"scratch_root": scratch_root}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", json.dumps(connection))
    yield {"connection": connection, "scratch_root": scratch_root, "control": control, "home": tmp_path / "home"}
    subprocess.run(["ssh", "-S", str(next(iter(control.iterdir()), control / "none")), "-O", "exit", "x"],
                   capture_output=True, check=False)  # fmt: skip
    shutil.rmtree(control, ignore_errors=True)
    shutil.rmtree(scratch_root, ignore_errors=True)  # the sandbox's node is this machine


def _argv(db_uri: str, *extra: str) -> list[str]:
    return ["run", "--backend", "slurm", "--source", str(CORPORA), "--db", db_uri, "--shard-rows", "15",
            "--no-embeddings", "--slurm-python", sys.executable, "--json", *extra]  # fmt: skip


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The indices each submit_or_reattach call submitted (a spy: the real function runs)."""
    calls: list[list[int]] = []
    real = jobs.submit_or_reattach

    def spy(*args: Any, **kwargs: Any) -> jobs.Submission:
        submission = real(*args, **kwargs)
        calls.append(sorted(i for indices in submission.submitted.values() for i in indices))
        return submission

    monkeypatch.setattr(jobs, "submit_or_reattach", spy)
    return calls


def _before_fetch(monkeypatch: pytest.MonkeyPatch, fault: Any) -> None:
    """Run `fault(transport, remote_out)` once, after every index ended and before the results are fetched."""
    real = compute_slurm._fetch

    def fetch_after_fault(transport: Any, remote_out: str, *args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(compute_slurm, "_fetch", real)
        fault(transport, remote_out)
        real(transport, remote_out, *args, **kwargs)

    monkeypatch.setattr(compute_slurm, "_fetch", fetch_after_fault)


def _assert_rows_exactly_once(db_uri: str, home: Path, batch_id: str) -> None:
    """Every exported document has one result row; the concept rows are exactly those the result files hold."""
    results = home / "results" / batch_id
    entries = [ResultEntry.read(p) for p in sorted(results.glob("result-*.json"))]
    with psycopg.connect(db_uri) as conn:
        exported = conn.execute(
            "SELECT rows, shard_count FROM export_batches WHERE batch_id = %s", (batch_id,)
        ).fetchone()
        docs = conn.execute("SELECT count(*) FROM document_results WHERE batch_id = %s", (batch_id,)).fetchone()[0]
        concepts = conn.execute("SELECT count(*) FROM document_concepts").fetchone()[0]
        ledger = [
            r[0] for r in conn.execute("SELECT shard FROM load_ledger WHERE batch_id = %s ORDER BY 1", (batch_id,))
        ]
    assert exported is not None and len(entries) == exported[1]
    assert docs == exported[0] == sum(e.input_rows for e in entries)
    assert concepts == sum(e.outputs["concepts"].rows for e in entries) > 0
    assert ledger == list(range(exported[1]))


def _shard_rows(db_uri: str, shard: int) -> int:
    with psycopg.connect(db_uri) as conn:
        return conn.execute("SELECT count(*) FROM export_batch_documents WHERE shard = %s", (shard,)).fetchone()[0]


def _ledger(db_uri: str) -> list[int]:
    with psycopg.connect(db_uri) as conn:
        return [r[0] for r in conn.execute("SELECT shard FROM load_ledger ORDER BY shard")]


def test_a_result_file_damaged_on_the_cluster_is_named_then_recomputed_by_the_rerun(
    db_uri: str, cluster: dict, submitted: list[list[int]], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def damage_concepts_1(transport: Any, remote_out: str) -> None:
        flip = "import sys; p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[len(b) // 2] ^= 0xFF; " \
               "open(p, 'wb').write(b)"  # fmt: skip
        assert transport.run([sys.executable, "-c", flip, f"{remote_out}/concepts-1.parquet"]).ok

    _before_fetch(monkeypatch, damage_concepts_1)
    code, failed = _run(capsys, _argv(db_uri))
    assert code == 1 and failed["status"] == "failed"
    assert "shard 1: the fetched result does not verify: concepts-1.parquet is damaged" in failed["error"]
    assert _ledger(db_uri) == [0, 2]  # the others are loaded; shard 1 is not
    assert submitted == [[0, 1, 2]]

    code, again = _run(capsys, _argv(db_uri))
    assert code == 0, again
    assert submitted[1] == [1]  # only the damaged shard is computed again
    assert again["reconciled"] and again["reconciliation"]["ok"] and again["docs_loaded"] == _shard_rows(db_uri, 1)
    _assert_rows_exactly_once(db_uri, cluster["home"], again["batch_id"])


def test_scratch_purged_between_submit_and_fetch_is_a_clear_error_and_the_rerun_computes_only_what_is_missing(
    db_uri: str, cluster: dict, submitted: list[list[int]], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real_fetch = compute_slurm._fetch

    def fetch_shard_0_then_purge(transport: Any, remote_out: str, indices: list[int], *args: Any) -> None:
        """Shard 0 came back before the purge (an earlier, interrupted fetch); then the scratch folder is gone."""
        monkeypatch.setattr(compute_slurm, "_fetch", real_fetch)
        real_fetch(transport, remote_out, [0], *args)
        assert transport.run(["rm", "-rf", "--", os.path.dirname(remote_out)]).ok
        real_fetch(transport, remote_out, indices, *args)

    monkeypatch.setattr(compute_slurm, "_fetch", fetch_shard_0_then_purge)
    code, failed = _run(capsys, _argv(db_uri))
    assert code == 1 and "compute failed for 2 shard(s)" in failed["error"], failed
    assert re.search(r"shard 1: the scratch folder \S+ is gone on the cluster \(purged", failed["error"])
    assert "run again" in failed["error"]
    assert _ledger(db_uri) == [0]

    code, again = _run(capsys, _argv(db_uri))
    assert code == 0, again
    assert submitted == [[0, 1, 2], [1, 2]]  # staged again, and only the shards without a verified result ran
    assert again["reconciliation"]["ok"] and again["docs_exported"] == failed_exported(db_uri)
    _assert_rows_exactly_once(db_uri, cluster["home"], again["batch_id"])


def failed_exported(db_uri: str) -> int:
    with psycopg.connect(db_uri) as conn:
        return conn.execute("SELECT rows FROM export_batches").fetchone()[0]


def test_an_array_index_that_fails_once_reruns_alone_and_every_row_loads_once(
    db_uri: str, cluster: dict, submitted: list[list[int]], tmp_path: Path, capsys
) -> None:
    # The interpreter the job runs, behind a wrapper that makes array index 1 exit 3 the first time only (the
    # sandbox's node is this machine: it reads the wrapper and its marker where the test wrote them).
    marker = tmp_path / "index-1-failed-once"
    wrapper = tmp_path / "python-failing-once"
    wrapper.write_text(
        "#!/bin/sh\n"
        "for last; do :; done\n"
        f'if [ "$last" = 1 ] && [ ! -e "{marker}" ]; then : > "{marker}"; echo "injected failure" >&2; exit 3; fi\n'
        f'exec "{sys.executable}" "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    argv = [*_argv(db_uri)[:-3], "--slurm-python", str(wrapper), "--json"]
    code, failed = _run(capsys, argv)
    assert code == 1 and marker.exists()
    assert "compute failed for 1 shard(s) (shard 1: " in failed["error"] and "FAILED" in failed["error"], failed
    assert _ledger(db_uri) == [0, 2]

    code, again = _run(capsys, argv)
    assert code == 0, again
    assert submitted == [[0, 1, 2], [1]]
    assert again["reconciliation"]["ok"] and len(again["job_ids"]) == 1
    _assert_rows_exactly_once(db_uri, cluster["home"], again["batch_id"])

    code, idle = _run(capsys, argv)  # and nothing new: no job, no row
    assert code == 0 and (idle["job_ids"], idle["docs_loaded"], idle["batch_id"]) == ([], 0, None)
    assert len(submitted) == 2


def _serving_sshd_pids(control: Path, port: int) -> list[int]:
    """The sshd processes serving our own ControlMaster's TCP connection (never the listening sshd)."""
    socket = next(control.iterdir())
    check = subprocess.run(["ssh", "-S", str(socket), "-O", "check", "x"], capture_output=True, text=True, check=False)
    master = int(re.search(r"pid=(\d+)", check.stderr).group(1))  # type: ignore[union-attr]
    table = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout.splitlines()
    local_port = next(
        line.split()[3].rsplit(":", 1)[1] for line in table if f"pid={master}," in line and f":{port} " in line
    )
    serving = [
        line for line in table if line.split()[3].endswith(f":{port}") and line.split()[4].endswith(f":{local_port}")
    ]
    return sorted({int(p) for line in serving for p in re.findall(r"pid=(\d+)", line)})


def test_the_sshd_serving_the_upload_killed_mid_transfer_fails_with_a_transport_error_then_the_rerun_completes(
    db_uri: str, cluster: dict, hpc_sandbox, submitted: list[list[int]], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import corpusbridge.hpc.openssh as openssh

    killed: list[int] = []
    real_writer = openssh.TarWriter

    class WriterKillingItsSshd(real_writer):  # type: ignore[misc,valid-type]
        """The real tar stream; once the first file is through, the sshd serving it is killed with SIGKILL."""

        def _member(self, name: str, path: Path) -> None:
            if name == "1" and not killed:
                for pid in _serving_sshd_pids(cluster["control"], hpc_sandbox.port):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            super()._member(name, path)

    monkeypatch.setattr(openssh, "TarWriter", WriterKillingItsSshd)
    code, failed = _run(capsys, _argv(db_uri))
    assert code == 1 and "compute on the cluster did not finish: ssh to" in failed["error"], failed
    assert "failed during upload" in failed["error"] and "run again" in failed["error"]
    assert killed and submitted == []  # killed mid-upload: nothing was submitted
    assert hpc_sandbox.port in _listening_ports()  # the sandbox's own sshd still listens

    monkeypatch.setattr(openssh, "TarWriter", real_writer)
    code, again = _run(capsys, _argv(db_uri))
    assert code == 0, again
    assert submitted == [[0, 1, 2]] and again["reconciliation"]["ok"]
    _assert_rows_exactly_once(db_uri, cluster["home"], again["batch_id"])


def _listening_ports() -> set[int]:
    lines = subprocess.run(["ss", "-tlnH"], capture_output=True, text=True, check=True).stdout.splitlines()
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in lines}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "small-disk") as mount:
        yield mount


def test_a_full_disk_during_fetch_is_a_clear_error_with_no_half_file_then_a_rerun_fetches_without_computing(
    db, hpc_sandbox, openssh_transport, disk: Path, tmp_path: Path
) -> None:
    from corpusbridge.compute.dictionary import cached_dictionary
    from corpusbridge.compute.slurm import run_slurm
    from corpusbridge.export.selection import Selection
    from corpusbridge.export.stage import run_export

    sanitized_corpus(db, 40)
    terms = tmp_path / "terms.tsv"
    terms.write_text("concept_id\tterm\nC1\tlung cancer\nC2\tasthma\nC3\tmalaria\n", encoding="utf-8")
    dictionary = cached_dictionary(terms, tmp_path / "dictionaries")
    export = run_export(db, Selection(dictionary_version=dictionary.version), tmp_path / "exports", shard_rows=15)
    args = (openssh_transport, hpc_sandbox.scratch_root, Path(str(export.manifest)), dictionary.path, disk / "results")
    kwargs = {"embeddings": False, "python": sys.executable, "poll_seconds": 1.0, "options": {"time": "00:05:00"},
              "label": uuid.uuid4().hex}  # fmt: skip
    (disk / "results").mkdir()
    filler = fill(disk)
    with pytest.raises(OSError, match="no space left on device") as failed:
        run_slurm(*args, **kwargs)
    assert str(disk / "results") in str(failed.value) and "free space there and run again" in str(failed.value)
    assert list((disk / "results").iterdir()) == []  # no half file under any name

    filler.unlink()
    again = run_slurm(*args, **kwargs)
    assert (again.failed, again.submitted, again.docs_processed) == ({}, [], 40)  # fetched, nothing computed again
    assert sorted(p.name for p in (disk / "results").iterdir()) == sorted(
        name for i in range(3) for name in (*result_files(i, embeddings=False), f"job-{i}.json")
    )


def test_the_sshd_serving_the_fetch_killed_mid_transfer_fails_the_run_then_the_rerun_fetches_without_computing(
    db_uri: str, cluster: dict, hpc_sandbox, submitted: list[list[int]], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import corpusbridge.hpc.openssh as openssh

    killed: list[int] = []
    real_untar = openssh.untar_in_order

    def untar_after_killing_its_sshd(stream: Any, targets: list[Path]) -> int:
        """The download's tar stream is open (the remote tar runs); the sshd serving it is killed first."""
        if not killed:
            for pid in _serving_sshd_pids(cluster["control"], hpc_sandbox.port):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return real_untar(stream, targets)

    monkeypatch.setattr(openssh, "untar_in_order", untar_after_killing_its_sshd)
    code, failed = _run(capsys, _argv(db_uri))
    assert code == 1 and killed and "compute on the cluster did not finish" in failed["error"], failed
    assert "run again" in failed["error"] and _ledger(db_uri) == []
    results = cluster["home"] / "results"
    assert [p.name for p in results.rglob("*") if p.is_file() and p.name.startswith(".")] == []  # no half file

    monkeypatch.setattr(openssh, "untar_in_order", real_untar)
    code, again = _run(capsys, _argv(db_uri))
    assert code == 0, again
    assert submitted == [[0, 1, 2], []]  # fetched again, nothing computed twice
    _assert_rows_exactly_once(db_uri, cluster["home"], again["batch_id"])
