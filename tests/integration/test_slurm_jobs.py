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


def test_a_long_irregular_pending_array_is_read_whole(hpc_sandbox, openssh_transport) -> None:
    """squeue's %i would cut `N_[1,3,6,10,...` at 31 characters: poll and re-attach must see all 40 indices."""
    from corpusbridge.hpc import commands

    name = f"cb-jobs-test-irregular-{uuid.uuid4().hex[:8]}"
    indices = [i * (i + 1) // 2 for i in range(40)]  # no step form fits: the whole list is printed, or cut
    argv = ["sbatch", "--parsable", f"--job-name={name}", "--output=/dev/null", "--time=00:02:00"]
    argv += [f"--array={commands.array_spec(indices, 1)}", "--wrap", "sleep 20"]
    result = openssh_transport.run(argv, timeout=60)
    assert result.ok, result.stderr
    job_id = result.stdout.strip()
    try:
        polled = monitor.poll(openssh_transport, [job_id])
        assert polled.unreachable is None and polled.unreadable == []
        assert sorted(row.index for row in polled.rows) == indices
        found = jobs.find_jobs(openssh_transport, name)
        assert sorted(row.index for row in found) == indices
    finally:
        jobs.cancel(openssh_transport, [job_id])


def test_a_job_we_cancelled_is_never_reattached(hpc_sandbox, openssh_transport) -> None:
    """The clear race: the old try's scancel (with its marker) must not be re-attached to by the new try."""
    spec = spec_for(hpc_sandbox, "sleep 60", array_size=2, options={"time": "00:02:00"})
    first = jobs.submit_or_reattach(openssh_transport, spec)
    (old,) = first.submitted
    jobs.cancel(openssh_transport, [old], scratch=spec.scratch)
    again = jobs.submit_or_reattach(openssh_transport, spec)
    try:
        assert again.reattached == {} and list(again.submitted.values()) == [[0, 1]]
        assert jobs.read_markers(openssh_transport, spec.scratch).cancelled == {old}
    finally:
        jobs.cancel(openssh_transport, list(again.jobs))
