"""Issue 13, items 7-10: what an adversarial DAG author or Param could do through the SLURM layer, reproduced
against the real loopback SLURM + sshd sandbox (tests/fixtures_hpc.py), and what happens now."""

from __future__ import annotations

import uuid

import pytest

from corpusbridge.hpc import commands, jobs, naming

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
        with pytest.raises(commands.SbatchOptionError, match="reserved|sets it"):
            jobs.submit_or_reattach(openssh_transport, spec)
        assert jobs.find_jobs(openssh_transport, spec.job_name) == []
        assert jobs.find_jobs(openssh_transport, evil) == []
    finally:
        leaked = {row.job_id for row in jobs.find_jobs(openssh_transport, spec.job_name)}
        leaked |= {row.job_id for row in jobs.find_jobs(openssh_transport, evil)}
        jobs.cancel(openssh_transport, sorted(leaked))
