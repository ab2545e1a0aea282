"""Parsers over scheduler output in tests/fixtures/slurm (provenance of each file: its README)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corpusbridge.hpc import parsing
from corpusbridge.hpc.states import UnknownSlurmState

SLURM = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"


def fixture(name: str, origin: str = "22.05.8") -> str:
    """`<name>-<origin>.txt`: origin is the SLURM version it was captured from, or `reconstructed`."""
    return (SLURM / f"{name}-{origin}.txt").read_text(encoding="utf-8")


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
    (row,) = parsing.parse_squeue_named(fixture("squeue-named-pipe-in-name"))
    assert row.name == "cb-fixture|odd|name" and row.job_id.isdigit() and row.index is None


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


def test_sacct_rows_keep_who_cancelled() -> None:
    rows = {row.key: row for row in parsing.parse_sacct(fixture("sacct-cancelled-by", "reconstructed"))}
    assert rows[("123", 0)].state == "COMPLETED"
    assert (rows[("123", 1)].state, rows[("123", 1)].cancelled_by) == ("CANCELLED", "1000")
    assert (rows[("123", 2)].state, rows[("123", 2)].cancelled_by, rows[("123", 2)].signal) == ("CANCELLED", None, 15)
    assert rows[("124", None)].state == "PREEMPTED"


def test_preflight_verdicts() -> None:
    # The verdict without the id of the job the test consumed (it is not the job that gets submitted).
    assert parsing.preflight_message(fixture("sbatch-test-only-ok")) == (
        "would start at 2026-11-27T07:13:01 using 1 processors on nodes vm in partition debug"
    )
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


def test_preflight_reads_the_verdict_not_a_preempts_line_after_it() -> None:
    verdict = parsing.preflight_message(fixture("sbatch-test-only-preempts", "reconstructed"))
    assert verdict == "would start at 2026-12-05T08:10:00 using 4 processors on nodes node[01-02] in partition gpu"


def test_step_form_of_a_throttled_remainder_is_expanded() -> None:
    """A retry of the even indices of a 40-task array: SLURM prints the pending rest as `1_[4-38:2%2]`."""
    rows = parsing.parse_squeue(fixture("squeue-array-step-form"))
    pending = sorted(row.index for row in rows if row.state == "PENDING")
    assert pending == list(range(4, 39, 2))
    assert {row.index for row in rows if row.state == "RUNNING"} == {0, 2}


def test_scontrol_step_form_and_whole_lists() -> None:
    rows = parsing.parse_scontrol(fixture("scontrol-array-pending-bitstr-len-0"))
    triangular = [i * (i + 1) // 2 for i in range(1, 40)]
    assert sorted(r.index for r in rows if r.state == "PENDING") == triangular
    assert parsing.expand_indices("7-399:7%1") == list(range(7, 400, 7))


@pytest.mark.parametrize(
    ("name", "parse"),
    [
        ("squeue-array-cut-31", parsing.parse_squeue),
        ("squeue-named-array-cut-31", parsing.parse_squeue_named),
        ("scontrol-array-pending-cut-64", parsing.parse_scontrol),
    ],
)
def test_a_list_slurm_cut_short_is_a_parse_error_naming_the_command_and_line(name, parse) -> None:
    with pytest.raises(
        parsing.TruncatedArrayList, match=r"printed a line corpusbridge cannot read.*SLURM_BITSTR_LEN=0"
    ):
        parse(fixture(name))


def test_squeue_r_and_bitstr_len_give_the_same_indices() -> None:
    one_per_line = {row.index: row.state for row in parsing.parse_squeue(fixture("squeue-array-r"))}
    whole_list = {row.index: row.state for row in parsing.parse_squeue(fixture("squeue-array-bitstr-len-0"))}
    assert one_per_line == whole_list and len(whole_list) == 40


def test_tolerant_reading_sets_an_unreadable_line_aside_with_its_job() -> None:
    parsed = parsing.read_squeue(fixture("squeue-array-cut-31"))
    assert [(r.job_id, r.index, r.state) for r in parsed.rows] == [("6", 0, "RUNNING")]
    (bad,) = parsed.unreadable
    assert bad.job_id == "6" and bad.truncated and "squeue" in str(bad) and "6_[1,3,6" in str(bad)


def test_re_attach_reads_only_its_own_lines() -> None:
    """Another job's unreadable line does not stop a re-attach by name."""
    text = fixture("squeue-named-array-cut-31") + "7_1|cb-mine|RUNNING|None\n"
    assert [(r.job_id, r.index) for r in parsing.parse_squeue_named(text, "cb-mine")] == [("7", 1)]


def test_held_states_as_slurm_prints_them() -> None:
    (special,) = parsing.parse_squeue(fixture("squeue-special-exit"))
    assert (special.state, special.reason) == ("SPECIAL_EXIT", "job requeued in held state")
    (held,) = parsing.parse_scontrol(fixture("scontrol-special-exit"))
    assert held.state == "SPECIAL_EXIT"
    (requeued,) = parsing.parse_squeue(fixture("squeue-requeue-held"))
    assert requeued.state == "PENDING"


def test_expediting_25_11_is_known() -> None:
    rows = parsing.parse_squeue(fixture("squeue-expediting", "reconstructed"))
    assert {r.index: r.state for r in rows} == {**dict.fromkeys(range(2, 10), "EXPEDITING"), 0: "COMPLETED"}
