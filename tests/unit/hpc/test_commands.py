from __future__ import annotations

import pytest

from corpusbridge.hpc import commands


def test_contiguous_array_with_throttle() -> None:
    assert commands.array_spec(range(4), 2) == "0-3%2"


def test_retry_submits_an_explicit_index_list() -> None:
    assert commands.array_spec([3, 1], None) == "1,3"
    assert commands.array_spec([2], 5) == "2%5"


def test_array_spec_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="no indices"):
        commands.array_spec([])
    with pytest.raises(ValueError, match="array_parallelism"):
        commands.array_spec([0, 1], 0)


def test_sbatch_argv_full() -> None:
    argv = commands.sbatch_argv(
        "/s/job.sh",
        job_name="cb-x",
        chdir="/s",
        output="/s/%A_%a.out",
        error="/s/%A_%a.err",
        indices=[0, 1, 2, 3],
        parallelism=2,
        options={"time": "00:10:00", "cpus": 2, "mem": "1G"},
    )
    assert argv == [
        "sbatch",
        "--parsable",
        "--job-name=cb-x",
        "--chdir=/s",
        "--output=/s/%A_%a.out",
        "--error=/s/%A_%a.err",
        "--array=0-3%2",
        "--cpus-per-task=2",
        "--mem=1G",
        "--time=00:10:00",
        "/s/job.sh",
    ]


def test_test_only_uses_the_same_options() -> None:
    real = commands.sbatch_argv("/j", job_name="n", chdir="/", output="o", error="e", options={"partition": "p"})
    dry = commands.sbatch_argv(
        "/j", job_name="n", chdir="/", output="o", error="e", options={"partition": "p"}, test_only=True
    )
    assert dry[1] == "--test-only" and dry[2:] == real[2:]
    assert not any(a.startswith("--array") for a in real)


def test_option_values_stay_single_arguments() -> None:
    (flag,) = commands.option_flags({"comment": "x; rm -rf ~"})
    assert flag == "--comment=x; rm -rf ~"


def test_bool_and_none_options() -> None:
    assert commands.option_flags({"exclusive": True, "requeue": False, "qos": None}) == ["--exclusive"]


@pytest.mark.parametrize("key", ["job_name", "array", "output", "chdir"])
def test_operator_owned_options_are_refused(key: str) -> None:
    with pytest.raises(commands.SbatchOptionError, match="corpusbridge sets it itself"):
        commands.option_flags({key: "x"})


# Every spelling sbatch's getopt_long accepts for a reserved option: prefixes, the short letters, odd case.
@pytest.mark.parametrize(
    ("key", "reserved"),
    [
        ("job", "--job-name"),
        ("j", "--job-name"),
        ("job_na", "--job-name"),
        ("out", "--output"),
        ("ou", "--output"),
        ("ch", "--chdir"),
        ("err", "--error"),
        ("arr", "--array"),
        ("par", "--parsable"),
        ("test", "--test-only"),
        ("wr", "--wrap"),
        ("export-f", "--export-file"),
        ("Job-Name", "--job-name"),
        ("J", "-J"),
        ("o", "-o"),
        ("e", "-e"),
        ("D", "-D"),
        ("a", "-a"),
    ],
)
def test_reserved_options_are_refused_in_every_spelling(key: str, reserved: str) -> None:
    with pytest.raises(commands.SbatchOptionError, match=f"may not set {reserved} "):
        commands.option_flags({key: "x"})


@pytest.mark.parametrize("name", ["export", "partition", "time", "account", "comment", "mem", "cpus", "wait"])
def test_options_that_start_no_reserved_name_pass(name: str) -> None:
    assert commands.reserved_option(name) is None


@pytest.mark.parametrize("spelling", ["--job", "--job=evil", "-J", "--out", "-o"])
def test_reserved_option_reads_command_line_spellings(spelling: str) -> None:
    assert commands.reserved_option(spelling) is not None


def test_option_names_are_checked() -> None:
    with pytest.raises(commands.SbatchOptionError, match="not an option name"):
        commands.option_flags({"time; reboot": "1"})


def test_squeue_asks_for_all_states_of_all_jobs_at_once() -> None:
    assert commands.squeue_argv(["12", "3", "12"]) == [
        *("env", "SLURM_BITSTR_LEN=0"),
        *("squeue", "-h", "-r", "--states=all", "-o", "%i|%T|%r", "-j", "3,12"),
    ]


def test_every_query_prints_whole_array_lists() -> None:
    """Without SLURM_BITSTR_LEN=0, SLURM cuts index lists (64 bytes, or 31 characters in squeue's %i)."""
    for argv in (
        commands.squeue_argv(["7"]),
        commands.squeue_by_name_argv(["cb-x"]),
        commands.scontrol_show_job_argv("7"),
        commands.sacct_argv(["7"]),
    ):
        assert argv[:2] == ["env", "SLURM_BITSTR_LEN=0"], argv
    assert "-r" in commands.squeue_by_name_argv(["cb-x"])  # one line per index: never a list to cut


def test_job_ids_are_validated() -> None:
    with pytest.raises(ValueError, match="not SLURM job ids"):
        commands.scancel_argv(["12", "1;reboot"])


def test_other_builders() -> None:
    assert commands.scontrol_show_job_argv("7")[2:] == ["scontrol", "show", "job", "-o", "7"]
    assert commands.sacct_argv(["7"])[2:5] == ["sacct", "-P", "-X"]
    assert commands.scancel_argv(["8", "7"]) == ["scancel", "7", "8"]
    assert commands.squeue_by_name_argv(["b", "a"])[-2:] == ["-n", "a,b"]
    assert "--me" in commands.squeue_by_name_argv(["a"])  # never another user's job of the same name
