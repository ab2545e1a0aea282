from __future__ import annotations

from pathlib import Path

import pytest

from corpusbridge.hpc.states import (
    POLICY_CHOICES,
    STATES,
    Phase,
    StatePolicy,
    StatePolicyError,
    UnknownSlurmState,
    classify,
)

SLURM = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"
# The releases the table claims (its comment says 22.05 through 25.11): `man squeue`'s JOB STATE CODES of each.
RELEASES = ["22.05.8", "25.11-reconstructed"]

TERMINAL_FAILURES = [
    "FAILED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "CANCELLED",
    "BOOT_FAIL",
    "DEADLINE",
]


def test_completed_is_the_only_success() -> None:
    assert [name for name, info in STATES.items() if info.phase is Phase.SUCCEEDED] == ["COMPLETED"]


@pytest.mark.parametrize("state", TERMINAL_FAILURES)
def test_every_failure_the_issue_names_is_terminal_and_failed(state: str) -> None:
    info = classify(state)
    assert info.terminal and info.phase is Phase.FAILED


@pytest.mark.parametrize(
    "state", ["PENDING", "CONFIGURING", "REQUEUED", "SUSPENDED", "REQUEUE_HOLD", "SPECIAL_EXIT", "EXPEDITING"]
)
def test_waiting_states_are_not_terminal(state: str) -> None:
    assert classify(state).phase is Phase.WAITING and not classify(state).terminal


@pytest.mark.parametrize("state", ["RUNNING", "COMPLETING", "STAGE_OUT"])
def test_active_states(state: str) -> None:
    assert classify(state).phase is Phase.ACTIVE


def test_sacct_decorations_are_ignored() -> None:
    assert classify("CANCELLED by 1000").name == "CANCELLED"
    assert classify("completed+").name == "COMPLETED"


def test_unknown_state_raises_with_a_pointer() -> None:
    with pytest.raises(UnknownSlurmState, match="does not guess"):
        classify("LAUNCH_FAILED_SOMEHOW")


def test_failure_meanings_tell_what_to_change() -> None:
    assert "time" in classify("TIMEOUT").meaning
    assert "mem" in classify("OUT_OF_MEMORY").meaning


@pytest.mark.parametrize("release", RELEASES)
def test_the_table_knows_every_state_of_each_release_it_claims(release: str) -> None:
    names = (SLURM / f"squeue-man-state-codes-{release}.txt").read_text().split()
    assert len(names) >= 24 and set(names) <= set(STATES)


def test_the_table_holds_nothing_no_release_prints() -> None:
    union = {n for r in RELEASES for n in (SLURM / f"squeue-man-state-codes-{r}.txt").read_text().split()}
    assert set(STATES) == union


def test_the_version_comment_names_the_range_tested_here() -> None:
    source = (Path(__file__).resolve().parents[3] / "include" / "corpusbridge" / "hpc" / "states.py").read_text()
    assert "SLURM 22.05 through 25.11" in source


def test_special_exit_is_held_for_release_not_failed() -> None:
    """SLURM holds a SPECIAL_EXIT job for `scontrol release`, as it does REQUEUE_HOLD: a retry must not rerun it."""
    assert classify("SPECIAL_EXIT").phase is Phase.WAITING and "release" in classify("SPECIAL_EXIT").meaning


def test_policy_per_site_dependent_state() -> None:
    policy = StatePolicy.from_mapping({"preempted": "wait", "SPECIAL_EXIT": "fail"})
    assert (
        policy.classify("PREEMPTED").phase is Phase.WAITING and "state policy" in policy.classify("PREEMPTED").meaning
    )
    assert policy.classify("SPECIAL_EXIT").terminal
    assert policy.classify("TIMEOUT").phase is Phase.FAILED  # not configurable: same everywhere
    assert policy.as_dict() == {"PREEMPTED": "wait", "SPECIAL_EXIT": "fail"}
    assert StatePolicy.from_mapping(policy.as_dict()) == policy


def test_policy_defaults_are_the_table() -> None:
    for name, choices in POLICY_CHOICES.items():
        assert STATES[name].phase is choices[0]


@pytest.mark.parametrize(("raw", "match"), [({"TIMEOUT": "wait"}, "cannot be set"), ({"PREEMPTED": "maybe"}, "wait")])
def test_policy_refuses_what_it_cannot_mean(raw: dict, match: str) -> None:
    with pytest.raises(StatePolicyError, match=match):
        StatePolicy.from_mapping(raw)
