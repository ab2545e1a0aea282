"""The submit-or-reattach decision, over rows as squeue reports them."""

from __future__ import annotations

from corpusbridge.hpc import jobs
from corpusbridge.hpc.parsing import ArrayTaskState

SPEC = jobs.JobSpec(command=["true"], scratch="/s", job_name="cb-x", array_size=4)


def row(job: str, index: int | None, state: str) -> ArrayTaskState:
    return ArrayTaskState(job, index, state, name="cb-x")


def test_fresh_work_submits_everything() -> None:
    plan = jobs.plan(SPEC, [], {})
    assert (plan.done, plan.attached, plan.todo) == ({}, {}, [0, 1, 2, 3])


def test_retry_resubmits_only_failed_indices() -> None:
    existing = [row("7", 0, "COMPLETED"), row("7", 1, "COMPLETED"), row("7", 2, "FAILED"), row("7", 3, "COMPLETED")]
    plan = jobs.plan(SPEC, existing, {0: "7", 1: "7", 3: "7"})
    assert plan.todo == [2] and plan.attached == {} and plan.done == {0: "7", 1: "7", 3: "7"}


def test_live_indices_are_reattached_not_resubmitted() -> None:
    existing = [row("7", 0, "RUNNING"), row("7", 1, "PENDING"), row("7", 2, "TIMEOUT"), row("7", 3, "COMPLETED")]
    plan = jobs.plan(SPEC, existing, {3: "7"})
    assert plan.attached == {"7": [0, 1]} and plan.todo == [2]


def test_completed_without_marker_is_rerun() -> None:
    """COMPLETED in squeue but no marker: the marker write failed (disk full?), so the output is not trusted."""
    plan = jobs.plan(SPEC, [row("7", i, "COMPLETED") for i in range(4)], {})
    assert plan.todo == [0, 1, 2, 3]


def test_single_job_is_index_zero() -> None:
    single = jobs.JobSpec(command="true", scratch="/s", job_name="cb-x")
    assert jobs.plan(single, [row("9", None, "RUNNING")], {}).attached == {"9": [0]}
    assert jobs.plan(single, [], {0: "9"}).todo == []


def test_a_job_we_cancelled_is_not_reattached_even_while_still_running() -> None:
    existing = [row("7", 0, "RUNNING"), row("7", 1, "PENDING"), row("8", 2, "RUNNING")]
    plan = jobs.plan(SPEC, existing, {3: "6"}, cancelled=frozenset({"7"}))
    assert plan.attached == {"8": [2]} and plan.todo == [0, 1]


def test_held_indices_are_reattached_by_default_and_resubmitted_where_the_site_never_releases() -> None:
    from corpusbridge.hpc.states import StatePolicy

    existing = [row("7", 0, "SPECIAL_EXIT"), row("7", 1, "PREEMPTED")]
    assert jobs.plan(SPEC, existing, {}).attached == {"7": [0]}  # SPECIAL_EXIT waits for release: never twice
    site = StatePolicy.from_mapping({"SPECIAL_EXIT": "fail", "PREEMPTED": "wait"})
    assert jobs.plan(SPEC, existing, {}, policy=site).attached == {"7": [1]}


def test_a_preflight_refusal_is_final_unless_a_submit_limit_said_no() -> None:
    wrong = jobs._scheduler_error("sbatch --test-only (pre-flight)", "sbatch: error: Invalid partition name specified")
    full = jobs._scheduler_error(
        "sbatch --test-only (pre-flight)", "sbatch: error: QOSMaxSubmitJobPerUserLimit\nJob violates accounting policy"
    )
    real = jobs._scheduler_error("sbatch", "sbatch: error: Batch job submission failed: Invalid account")
    assert isinstance(wrong, jobs.SlurmPreflightRejected) and not wrong.transient
    assert isinstance(full, jobs.SlurmPreflightRejected) and full.transient
    assert type(real) is jobs.SlurmSubmitError  # a refusal of the real submission keeps the task's retries
