"""Submit-or-reattach against the real sandbox, through the OpenSSH transport (no Airflow)."""

from __future__ import annotations

import uuid

import pytest

from corpusbridge.hpc import jobs, monitor, naming
from corpusbridge.hpc.parsing import parse_scontrol, scontrol_fields

pytestmark = [pytest.mark.integration, pytest.mark.slurm]


def spec_for(sandbox, command, **kwargs) -> jobs.JobSpec:
    key = naming.WorkKey("jobs_test", "t", uuid.uuid4().hex, -1, "h")
    return jobs.JobSpec(
        command=command,
        scratch=naming.scratch_dir(sandbox.scratch_root, key),
        job_name=naming.job_name(key),
        **kwargs,
    )


def test_second_call_reattaches_instead_of_submitting_twice(hpc_sandbox, openssh_transport) -> None:
    spec = spec_for(hpc_sandbox, "sleep 30", array_size=2, options={"time": "00:02:00"})
    first = jobs.submit_or_reattach(openssh_transport, spec)
    try:
        again = jobs.submit_or_reattach(openssh_transport, spec)
        assert list(first.submitted) == list(again.reattached) and again.submitted == {}
        named = jobs.find_jobs(openssh_transport, spec.job_name)
        assert {row.job_id for row in named} == set(first.submitted)
    finally:
        jobs.cancel(openssh_transport, list(first.jobs))


def test_preflight_fails_fast_with_the_schedulers_words(hpc_sandbox, openssh_transport) -> None:
    spec = spec_for(hpc_sandbox, ["true"], options={"partition": "no-such-partition"})
    with pytest.raises(jobs.SlurmSubmitError, match="Invalid partition name specified"):
        jobs.submit_or_reattach(openssh_transport, spec)
    assert jobs.find_jobs(openssh_transport, spec.job_name) == []


def test_bad_time_limit_fails_in_preflight(hpc_sandbox, openssh_transport) -> None:
    spec = spec_for(hpc_sandbox, ["true"], options={"time": "banana"})
    with pytest.raises(jobs.SlurmSubmitError, match=r"pre-flight.*Invalid --time"):
        jobs.submit_or_reattach(openssh_transport, spec)


def test_hostile_option_value_is_one_literal_argument(hpc_sandbox, openssh_transport) -> None:
    canary = f"{hpc_sandbox.scratch_root}/pwned-{uuid.uuid4().hex[:6]}"
    hostile = f"x; touch {canary}; $(touch {canary}) `touch {canary}`"
    spec = spec_for(hpc_sandbox, ["true"], options={"comment": hostile})
    sub = jobs.submit_or_reattach(openssh_transport, spec)
    (job_id,) = sub.submitted
    shown = openssh_transport.run(["scontrol", "show", "job", "-o", job_id]).stdout
    assert scontrol_fields(shown)["Comment"] == hostile
    assert openssh_transport.stat(canary) is None
    assert parse_scontrol(shown)[0].job_id == job_id


def test_poll_reports_unknown_ids_as_absent_not_finished(openssh_transport) -> None:
    assert monitor.poll(openssh_transport, ["999999"]) == monitor.PollResult([])
    result = monitor.poll(openssh_transport, ["999998", "999999"])
    assert result.rows == [] and result.unreachable is None
