"""Issue 13, items 7-10: what an adversarial DAG author or Param could do through the SLURM layer, reproduced
against the real loopback SLURM + sshd sandbox (tests/fixtures_hpc.py), and what happens now."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corpusbridge.hpc import commands, jobs, naming
from corpusbridge.hpc.cluster import ClusterSettings, ClusterSettingsError
from corpusbridge.hpc.openssh import OpenSSHTransport
from corpusbridge.hpc.transport import TransportError

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.faults]


def spec_for(sandbox, command, **kwargs) -> jobs.JobSpec:
    key = naming.WorkKey("harden_hpc", "t", uuid.uuid4().hex, -1, "h")
    return jobs.JobSpec(
        command=command,
        scratch=naming.scratch_dir(sandbox.scratch_root, key),
        job_name=naming.job_name(key),
        **kwargs,
    )


# -- item 8: reserved sbatch options, in every spelling sbatch accepts -------------------------------------------
# sbatch (getopt_long) takes any unambiguous prefix of a long option: `--job` is `--job-name`, `--out` is `--output`,
# `--ch` is `--chdir`. Each of these, before the fix, renamed the job or moved its log/working folder.
ABBREVIATIONS = {"job": "JobName", "out": "StdOut", "ch": "WorkDir", "job_nam": "JobName", "err": "StdErr"}


@pytest.mark.parametrize("key", sorted(ABBREVIATIONS))
def test_hostile_option_abbreviation_of_a_reserved_option_is_refused(hpc_sandbox, openssh_transport, key) -> None:
    evil = f"evil-{uuid.uuid4().hex[:8]}"
    value = evil if ABBREVIATIONS[key] == "JobName" else f"{hpc_sandbox.scratch_root}/{evil}"
    spec = spec_for(hpc_sandbox, ["true"], options={key: value, "time": "00:01:00"})
    try:
        with pytest.raises(commands.SbatchOptionError, match="corpusbridge sets it itself"):
            jobs.submit_or_reattach(openssh_transport, spec)
        assert jobs.find_jobs(openssh_transport, spec.job_name) == []
        assert jobs.find_jobs(openssh_transport, evil) == []
    finally:
        leaked = {row.job_id for row in jobs.find_jobs(openssh_transport, spec.job_name)}
        leaked |= {row.job_id for row in jobs.find_jobs(openssh_transport, evil)}
        jobs.cancel(openssh_transport, sorted(leaked))


# -- item 9: no trust on first use by configuration -----------------------------------------------------------
@pytest.fixture
def private_control_dir() -> Iterator[Path]:
    """A ControlMaster folder of this test's own: a shared master would skip the host key check altogether (and
    stopping it would break other sessions). Short, under /tmp: a socket path must stay under ~104 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="cb-hk-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # a master left behind ends itself after control_persist (5 s)


def unpinned(sandbox, folder: Path, **extra: Any) -> dict[str, Any]:
    """The sandbox connection with its host key NOT pinned (an empty known_hosts of our own)."""
    empty = folder / "known_hosts-empty"
    empty.touch()
    base = {k: v for k, v in sandbox.connection["extra"].items() if k != "host_key"}
    return {**sandbox.connection, "extra": {**base, "known_hosts": str(empty), "control_persist": 5, **extra}}


def test_an_unknown_host_key_is_refused_by_default(hpc_sandbox, private_control_dir) -> None:
    settings = ClusterSettings.from_mapping(unpinned(hpc_sandbox, private_control_dir))
    with pytest.raises(TransportError, match="Host key verification failed"):
        OpenSSHTransport(settings, control_dir=private_control_dir).run(["true"])


def test_airflow_no_host_key_check_no_longer_means_trust_on_first_use(hpc_sandbox, private_control_dir) -> None:
    conn = unpinned(hpc_sandbox, private_control_dir, no_host_key_check=True)
    with pytest.raises(ClusterSettingsError, match="accept_unknown_host_key_insecure"):
        OpenSSHTransport(ClusterSettings.from_mapping(conn), control_dir=private_control_dir).run(["true"])


def test_a_malformed_pinned_key_never_falls_back(hpc_sandbox, private_control_dir) -> None:
    conn = unpinned(hpc_sandbox, private_control_dir, host_key="ssh-ed25519 AAAAnotakey", no_host_key_check=True)
    with pytest.raises(ClusterSettingsError, match=r"extra\.host_key"):
        OpenSSHTransport(ClusterSettings.from_mapping(conn), control_dir=private_control_dir).run(["true"])


def test_the_insecure_opt_in_connects_and_warns_every_time(hpc_sandbox, private_control_dir, caplog) -> None:
    conn = unpinned(hpc_sandbox, private_control_dir, accept_unknown_host_key_insecure=True)
    caplog.set_level(logging.WARNING, logger="corpusbridge.hpc.openssh")
    for _ in range(2):
        assert OpenSSHTransport(ClusterSettings.from_mapping(conn), control_dir=private_control_dir).run(["true"]).ok
    warnings = [r for r in caplog.records if "accept_unknown_host_key_insecure" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)


# -- item 7: stage_in / stage_out confined to the run's scratch folder -----------------------------------------
@pytest.fixture
def run_scratch(hpc_sandbox, openssh_transport) -> Iterator[str]:
    """A run's scratch folder with an output, a planted link to /etc/hostname, and a file beside the folder."""
    parent = f"{hpc_sandbox.scratch_root}/harden_hpc/{uuid.uuid4().hex[:10]}"
    scratch = f"{parent}/run"
    setup = 'mkdir -p "$1/out" && echo ok > "$1/out/a.txt" && ln -s /etc/hostname "$1/out/link.txt" && echo no > "$2"'
    assert openssh_transport.run(["sh", "-c", setup, "sh", scratch, f"{parent}/beside.txt"]).ok
    yield scratch
    openssh_transport.run(["rm", "-rf", "--", parent])


def operator(**kwargs: Any):
    from corpusbridge_airflow.operators.slurm import SlurmOperator

    return SlurmOperator(task_id=f"t{uuid.uuid4().hex[:6]}", command=["true"], **kwargs)


@pytest.mark.parametrize(
    "pattern", ["../*.txt", "/etc/hostname", "../../../../../etc/passwd", "out/link.txt", "out/*.txt", "out/../../*"]
)
def test_hostile_stage_out_cannot_leave_scratch(openssh_transport, run_scratch, tmp_path, pattern) -> None:
    from corpusbridge.hpc.staging import ScratchEscapeError

    op = operator(stage_out=[pattern], local_output_dir=str(tmp_path / "got"))
    with pytest.raises(ScratchEscapeError, match="outside the run's scratch folder"):
        op._stage_out(openssh_transport, run_scratch)
    assert not (tmp_path / "got").exists() or not any((tmp_path / "got").iterdir())


def test_stage_out_inside_scratch_still_fetches(openssh_transport, run_scratch, tmp_path) -> None:
    op = operator(stage_out=["out/a.txt", f"{run_scratch}/out/a*"], local_output_dir=str(tmp_path / "got"))
    assert op._stage_out(openssh_transport, run_scratch) == [str(tmp_path / "got" / "a.txt")]


def test_hostile_stage_in_path_ending_in_dotdot_lands_inside_scratch(openssh_transport, run_scratch, tmp_path) -> None:
    local = tmp_path / "inputs"
    (local / "sub").mkdir(parents=True)
    (local / "data.txt").write_text("data")
    operator(stage_in=[str(local / "sub" / "..")])._stage_in(openssh_transport, run_scratch)
    parent = run_scratch.rsplit("/", 1)[0]
    assert openssh_transport.stat(f"{parent}/data.txt") is None
    assert openssh_transport.sha256(f"{run_scratch}/inputs/data.txt") is not None


def test_hostile_symlink_in_a_stage_in_folder_is_refused_before_any_transfer(
    openssh_transport, run_scratch, tmp_path
) -> None:
    from corpusbridge.hpc.staging import StagingError

    secret = tmp_path / "secret"
    secret.write_text("private key")
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "key").symlink_to(secret)
    with pytest.raises(StagingError, match="is a symbolic link"):
        operator(stage_in=[str(folder)])._stage_in(openssh_transport, run_scratch)
    assert openssh_transport.stat(f"{run_scratch}/inputs") is None
    operator(stage_in=[str(folder)], stage_in_symlinks="links")._stage_in(openssh_transport, run_scratch)
    got = openssh_transport.run(["readlink", "--", f"{run_scratch}/inputs/key"]).stdout
    assert got == f"{secret}\n"
    assert openssh_transport.sha256(f"{run_scratch}/inputs/a.txt") is not None


def test_stage_in_refuses_a_link_planted_in_scratch(openssh_transport, run_scratch, tmp_path) -> None:
    from corpusbridge.hpc import staging

    planted = 'ln -s "$2" "$1/out/evil" && mkdir -p "$2"'
    outside = f"{run_scratch.rsplit('/', 1)[0]}/elsewhere"
    assert openssh_transport.run(["sh", "-c", planted, "sh", run_scratch, outside]).ok
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "f.txt").write_text("x")  # would land on out/evil/f.txt, i.e. through the planted link
    with pytest.raises(staging.ScratchEscapeError, match="resolve outside"):
        staging.stage_in(openssh_transport, [tmp_path / "evil"], f"{run_scratch}/out")
    assert openssh_transport.stat(f"{outside}/f.txt") is None


# -- item 10: `%` in scratch_root, a dropped download, a killed CLI ----------------------------------------------
def wait_until_ended(transport, job_id: str) -> str:
    """The job's final state, polled without a deadline of our own (the test's timeout bounds it)."""
    from corpusbridge.hpc.parsing import scontrol_fields

    while True:
        shown = transport.run(["scontrol", "show", "job", "-o", job_id]).stdout
        state = scontrol_fields(shown).get("JobState", "")
        if state in {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}:
            return state
        time.sleep(0.5)


def test_percent_in_scratch_root_still_gives_the_job_its_log(hpc_sandbox, openssh_transport) -> None:
    from corpusbridge.hpc import script

    root = f"{hpc_sandbox.scratch_root}/pct%j%x%%-{uuid.uuid4().hex[:6]}"
    key = naming.WorkKey("harden_hpc", "pct", uuid.uuid4().hex, -1, "h")
    spec = jobs.JobSpec(["echo", "hello from %"], naming.scratch_dir(root, key), naming.job_name(key))
    try:
        (job_id,) = jobs.submit_or_reattach(openssh_transport, spec).submitted
        assert wait_until_ended(openssh_transport, job_id) == "COMPLETED"
        log = openssh_transport.run(["cat", "--", script.log_file(spec.scratch, job_id, None, "out")])
        assert log.stdout == "hello from %\n", log.stderr
    finally:
        openssh_transport.run(["rm", "-rf", "--", root])


def test_connection_dropped_mid_download_is_a_transport_error(hpc_sandbox, private_control_dir, tmp_path) -> None:
    """A 4 GiB sparse file streams for long enough to cut the connection (our own ControlMaster) mid-file."""
    import re
    import signal
    import threading

    settings = ClusterSettings.from_mapping(hpc_sandbox.connection)
    transport = OpenSSHTransport(settings, control_dir=private_control_dir)
    big = f"{hpc_sandbox.scratch_root}/harden_hpc/big-{uuid.uuid4().hex[:8]}"
    assert transport.run(["sh", "-c", 'mkdir -p "${1%/*}" && truncate -s 4G "$1"', "sh", big]).ok
    target = tmp_path / "big"
    raised: list[BaseException] = []

    def download() -> None:
        try:
            transport.get_many([(big, target), (big, tmp_path / "again")])
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=download)
    try:
        thread.start()
        while not any(p.stat().st_size > 2**20 for p in tmp_path.glob(".big.cb-part-*")) and thread.is_alive():
            time.sleep(0.05)
        checked = subprocess.run(
            ["ssh", *transport._options, "-O", "check", settings.host], capture_output=True, text=True, check=False
        )
        master = int(re.search(r"pid=(\d+)", checked.stderr).group(1))
        os.kill(master, signal.SIGKILL)  # the connection drops: our own master, started by this test's transport
        thread.join()
    finally:
        thread.join()
        OpenSSHTransport(settings).run(["rm", "-f", "--", big])
    assert len(raised) == 1 and isinstance(raised[0], TransportError), raised
    assert "file 1 of 2" in str(raised[0]) and str(target) in str(raised[0])
    assert not target.exists()
