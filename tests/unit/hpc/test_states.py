from __future__ import annotations

import pytest

from corpusbridge.hpc.states import STATES, Phase, UnknownSlurmState, classify

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


@pytest.mark.parametrize("state", ["PENDING", "CONFIGURING", "REQUEUED", "SUSPENDED"])
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
