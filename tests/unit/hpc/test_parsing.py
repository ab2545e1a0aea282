"""Parsers over verbatim output captured from the sandbox (SLURM 22.05.8, Debian 12)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corpusbridge.hpc import parsing
from corpusbridge.hpc.states import UnknownSlurmState

SLURM = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"


def fixture(name: str) -> str:
    return (SLURM / f"{name}-22.05.8.txt").read_text(encoding="utf-8")


def test_sbatch_parsable_gives_the_job_id() -> None:
    assert parsing.parse_sbatch_parsable(fixture("sbatch-parsable-array")) == "8"
    assert parsing.parse_sbatch_parsable(fixture("sbatch-parsable-single")) == "9"
    assert parsing.parse_sbatch_parsable("42;cluster2\n") == "42"


def test_sbatch_parsable_rejects_anything_else() -> None:
    with pytest.raises(parsing.SlurmOutputError, match="not a job id"):
        parsing.parse_sbatch_parsable("sbatch: error: Batch job submission failed\n")


def test_squeue_expands_the_pending_remainder_of_an_array() -> None:
    rows = parsing.parse_squeue(fixture("squeue-array-pending-running"))
    by_key = {row.key: row for row in rows}
    assert by_key[("8", 2)].state == by_key[("8", 3)].state == "PENDING"
    assert by_key[("8", 2)].reason == "JobArrayTaskLimit"
    assert by_key[("8", 0)].state == "RUNNING"
    assert by_key[("9", None)].state == "FAILED"
    assert by_key[("10", None)].state == "RUNNING"
    assert len(rows) == 6


def test_squeue_finished_jobs() -> None:
    states = {row.key: row.state for row in parsing.parse_squeue(fixture("squeue-finished"))}
    assert states == {
        ("10", None): "CANCELLED",
        ("8", 0): "COMPLETED",
        ("8", 1): "COMPLETED",
        ("8", 2): "FAILED",
        ("8", 3): "COMPLETED",
        ("9", None): "FAILED",
    }


def test_squeue_by_name_keeps_names() -> None:
    rows = parsing.parse_squeue_named(fixture("squeue-by-name"))
    assert {row.name for row in rows} == {"cb-fixture-array", "cb-fixture-cancel"}
    assert sorted(row.index for row in rows if row.job_id == "8") == [0, 1, 2, 3]


def test_squeue_name_with_a_pipe_in_it() -> None:
    (row,) = parsing.parse_squeue_named("5|odd|name|RUNNING|None\n")
    assert (row.job_id, row.name, row.state) == ("5", "odd|name", "RUNNING")


def test_scontrol_array_running_has_one_row_per_index() -> None:
    rows = parsing.parse_scontrol(fixture("scontrol-array-running"))
    assert {row.key: row.state for row in rows} == {
        ("8", 0): "RUNNING",
        ("8", 1): "RUNNING",
        ("8", 2): "PENDING",
        ("8", 3): "PENDING",
    }


def test_scontrol_finished_array_carries_exit_codes() -> None:
    rows = {row.key: row for row in parsing.parse_scontrol(fixture("scontrol-array-finished"))}
    assert (rows[("8", 2)].state, rows[("8", 2)].exit_code) == ("FAILED", 3)
    assert (rows[("8", 0)].state, rows[("8", 0)].exit_code) == ("COMPLETED", 0)
    assert rows[("8", 0)].name == "cb-fixture-array"


def test_scontrol_single_failed_and_cancelled() -> None:
    (failed,) = parsing.parse_scontrol(fixture("scontrol-failed"))
    assert (failed.job_id, failed.index, failed.state, failed.exit_code, failed.reason) == (
        "9",
        None,
        "FAILED",
        3,
        "NonZeroExitCode",
    )
    (cancelled,) = parsing.parse_scontrol(fixture("scontrol-cancelled"))
    assert (cancelled.state, cancelled.exit_code, cancelled.signal) == ("CANCELLED", 0, 15)


def test_scontrol_fields_keep_values_with_spaces() -> None:
    fields = parsing.scontrol_fields("JobId=3 JobName=a b c JobState=RUNNING Reason=None")
    assert fields == {"JobId": "3", "JobName": "a b c", "JobState": "RUNNING", "Reason": "None"}


def test_sacct_rows() -> None:
    # A constructed sample, not captured: the sandbox has no slurmdbd (see sacct-disabled-22.05.8.txt).
    text = "8_0|cb-x|COMPLETED|0:0|None\n8_[1-2]|cb-x|PENDING|0:0|Priority\n9|cb-y|CANCELLED by 0|0:15|None\n"
    rows = {row.key: row for row in parsing.parse_sacct(text)}
    assert rows[("8", 2)].state == "PENDING"
    assert (rows[("9", None)].state, rows[("9", None)].signal) == ("CANCELLED by 0", 15)


def test_preflight_verdicts() -> None:
    assert parsing.preflight_message(fixture("sbatch-test-only-ok")).startswith("sbatch: Job 7 to start at")
    assert parsing.preflight_message(fixture("sbatch-test-only-bad-partition")) == (
        "allocation failure: Invalid partition name specified"
    )
    assert "Invalid --time" in parsing.preflight_message(fixture("sbatch-test-only-bad-time"))


def test_controller_unreachable_is_recognised() -> None:
    assert parsing.controller_unreachable(fixture("squeue-controller-down"))
    assert not parsing.controller_unreachable(fixture("squeue-invalid-id"))
    assert not parsing.controller_unreachable(fixture("sacct-disabled"))


def test_unknown_state_raises_at_the_parser() -> None:
    with pytest.raises(UnknownSlurmState, match="WIBBLE"):
        parsing.parse_squeue("4|WIBBLE|None\n")


def test_malformed_rows_name_the_format() -> None:
    with pytest.raises(parsing.SlurmOutputError, match=re.escape("%i|%T|%r")):
        parsing.parse_squeue("4 RUNNING\n")
    with pytest.raises(parsing.SlurmOutputError, match="not a SLURM job id"):
        parsing.parse_squeue("x_1|RUNNING|None\n")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("1-3%2", [1, 2, 3]), ("1,4,6-7", [1, 4, 6, 7]), ("0", [0]), ("0-199%10", list(range(200)))],
)
def test_expand_indices(spec: str, expected: list[int]) -> None:
    assert parsing.expand_indices(spec) == expected


def test_exit_code() -> None:
    assert parsing.parse_exit_code("3:0") == (3, 0)
    assert parsing.parse_exit_code("0:15") == (0, 15)
    assert parsing.parse_exit_code("") == (None, None)
