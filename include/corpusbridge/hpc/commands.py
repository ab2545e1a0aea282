"""Argument lists for sbatch, squeue, scontrol, sacct and scancel. Pure: no I/O, easy to test.

Every builder returns an argv list; the transport quotes each element, so option values coming from a
DAG (a partition name, a time limit) can never become shell syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

# Output formats the parsers in corpusbridge.hpc.parsing read. `|` never appears in ids or states.
SQUEUE_FORMAT = "%i|%T|%r"
SQUEUE_NAME_FORMAT = "%i|%j|%T|%r"
SACCT_FIELDS = "JobID,JobName,State,ExitCode,Reason"
# SLURM cuts array index lists at 64 bytes ("...") and squeue's %i at 31 characters unless this is set; 0 means
# "no limit" (squeue, sacct and scontrol all read it). Passed through `env`, so no shell is involved.
QUERY_ENV = ("SLURM_BITSTR_LEN=0",)

# Short names a DAG author reaches for, mapped to sbatch's long options.
OPTION_ALIASES = {
    "cpus": "cpus-per-task",
    "gpus": "gpus-per-task",
    "nodes": "nodes",
    "tasks": "ntasks",
}
# Flags the operator sets itself; letting sbatch_options override them would break re-attachment
# (job name), log streaming (output/error) or staging (chdir).
RESERVED_OPTIONS = frozenset(
    {"array", "job-name", "chdir", "output", "error", "parsable", "test-only", "wrap", "export-file"}
)
# sbatch parses its command line with getopt_long, which takes any unambiguous prefix of a long option
# (`--job` is `--job-name`, `--ch` is `--chdir`): a name that starts a reserved one is refused unless it is an
# option of its own, which getopt matches exactly. These are the sbatch (22.05-24.11) options that start a
# reserved name.
_EXACT_OPTIONS_STARTING_A_RESERVED_ONE = frozenset({"export"})
# Short forms of reserved options (-a -J -D -o -e): refused even though option_flags always writes `--name`.
RESERVED_SHORT = frozenset({"a", "J", "D", "o", "e"})
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class SbatchOptionError(ValueError):
    """An sbatch_options entry that cannot be turned into a flag."""


def array_spec(indices: Sequence[int], parallelism: int | None = None) -> str:
    """The value of --array: `0-N` for a contiguous run from zero, an explicit list otherwise (retries).

    `%K` caps how many indices run at once.
    """
    if not indices:
        raise ValueError("array_spec: no indices to submit")
    if any(i < 0 for i in indices):
        raise ValueError(f"array_spec: negative index in {list(indices)}")
    ordered = sorted(set(indices))
    spec = f"{ordered[0]}-{ordered[-1]}" if _contiguous(ordered) and len(ordered) > 1 else ",".join(map(str, ordered))
    if parallelism is not None:
        if parallelism < 1:
            raise ValueError(f"array_parallelism must be >= 1, got {parallelism}")
        spec += f"%{parallelism}"
    return spec


def _contiguous(ordered: Sequence[int]) -> bool:
    return ordered[-1] - ordered[0] == len(ordered) - 1


def option_flags(options: Mapping[str, object]) -> list[str]:
    """`{"time": "00:10:00", "cpus": 2, "exclusive": True}` -> `--time=00:10:00 --cpus-per-task=2 --exclusive`.

    `None` and `False` drop the option (so a DAG can switch one off); underscores become hyphens.
    """
    flags: list[str] = []
    for key in sorted(options):
        value = options[key]
        name = _option_name(key)
        if value is None or value is False:
            continue
        flags.append(f"--{name}" if value is True else f"--{name}={value}")
    return flags


def _option_name(key: str) -> str:
    if not _OPTION_NAME.match(key):
        raise SbatchOptionError(
            f"sbatch_options key {key!r} is not an option name (letters, digits, '-' or '_'); "
            "write e.g. {'time': '00:10:00', 'mem': '4G'}"
        )
    name = OPTION_ALIASES.get(key, key.replace("_", "-"))
    reserved = reserved_option(name)
    if reserved:
        raise SbatchOptionError(
            f"sbatch_options may not set {reserved} (given as {key!r}): corpusbridge sets it itself, and job "
            "naming, logs and re-attachment depend on it; remove it from sbatch_options"
        )
    return name


def reserved_option(name: str) -> str | None:
    """The reserved sbatch option `name` would set, in any spelling sbatch accepts (`job`, `--out=`, `J`), as
    `--job-name`/`-J`; None when `name` is free to use."""
    bare = name.strip().removeprefix("--").removeprefix("-").split("=", 1)[0]
    if bare in RESERVED_SHORT:
        return f"-{bare}"
    lowered = bare.lower().replace("_", "-")  # getopt is case-sensitive; a near miss is refused all the same
    if not lowered or lowered in _EXACT_OPTIONS_STARTING_A_RESERVED_ONE:
        return None
    hits = sorted(option for option in RESERVED_OPTIONS if option.startswith(lowered))
    return f"--{hits[0]}" if hits else None


def sbatch_argv(
    script: str,
    *,
    job_name: str,
    chdir: str,
    output: str,
    error: str,
    indices: Sequence[int] | None = None,
    parallelism: int | None = None,
    options: Mapping[str, object] | None = None,
    test_only: bool = False,
) -> list[str]:
    """sbatch for a batch script already on the cluster; `indices=None` submits a single job."""
    argv = ["sbatch", "--test-only" if test_only else "--parsable"]
    argv += [f"--job-name={job_name}", f"--chdir={chdir}", f"--output={output}", f"--error={error}"]
    if indices is not None:
        argv.append(f"--array={array_spec(indices, parallelism)}")
    argv += option_flags(options or {})
    argv.append(script)
    return argv


def with_query_env(argv: Sequence[str]) -> list[str]:
    """`env SLURM_BITSTR_LEN=0 <argv>`: the query prints whole array index lists."""
    return ["env", *QUERY_ENV, *argv]


def squeue_argv(job_ids: Iterable[str]) -> list[str]:
    """One squeue for many jobs. `--states=all` keeps finished jobs visible (squeue hides them otherwise);
    `-r` prints one line per array index, so a pending remainder is never a (possibly cut) list."""
    ids = _id_list(job_ids)
    return with_query_env(["squeue", "-h", "-r", "--states=all", "-o", SQUEUE_FORMAT, "-j", ids])


def squeue_by_name_argv(names: Iterable[str]) -> list[str]:
    """Our own jobs carrying one of these names, in any state: how a retry finds the job it should re-attach to.

    `--me` (SLURM >= 20.11): job names are visible to every user and stay the same across retries, so without it a
    job another user submitted under the name would be adopted, waited on and its results fetched.
    """
    joined = ",".join(sorted(set(names)))
    if not joined:
        raise ValueError("squeue_by_name_argv: no job names")
    return with_query_env(["squeue", "--me", "-h", "-r", "--states=all", "-o", SQUEUE_NAME_FORMAT, "-n", joined])


def scontrol_show_job_argv(job_id: str) -> list[str]:
    """One line per job (and per array index): carries ExitCode, which squeue lacks."""
    return with_query_env(["scontrol", "show", "job", "-o", _id_list([job_id])])


def sacct_argv(job_ids: Iterable[str]) -> list[str]:
    """Accounting records (needs slurmdbd): outlives MinJobAge, unlike squeue and scontrol."""
    return with_query_env(["sacct", "-P", "-X", "-n", "-o", SACCT_FIELDS, "-j", _id_list(job_ids)])


def scancel_argv(job_ids: Iterable[str]) -> list[str]:
    return ["scancel", *checked_job_ids(job_ids)]


def checked_job_ids(job_ids: Iterable[str]) -> list[str]:
    """Job ids, validated (digits, or <array job>_<index>) and sorted: safe to pass as arguments."""
    return _id_list(job_ids).split(",")


_JOB_ID = re.compile(r"^\d+(_\d+)?$")


def _id_list(job_ids: Iterable[str]) -> str:
    ids = sorted(set(job_ids), key=lambda j: [int(p) for p in j.split("_")] if _JOB_ID.match(j) else [0])
    if not ids:
        raise ValueError("no job ids given")
    bad = [j for j in ids if not _JOB_ID.match(j)]
    if bad:
        raise ValueError(f"not SLURM job ids: {bad} (expected digits, or <array job>_<index>)")
    return ",".join(ids)
