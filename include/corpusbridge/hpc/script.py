"""The batch script each array index runs: cd to scratch, run the command (optionally in a container),
leave a completion marker.

Everything that comes from a DAG is quoted with `shlex.quote`. A command given as an argument list is
quoted element by element, so a parameter holding `; rm -rf ~` reaches the program as one literal
argument. A command given as a string is the author's own shell code and is run as such, in a subshell
so that a top-level `exit 3` still reaches the marker logic below it.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

MARKER_DIR = ".corpusbridge/done"
SCRIPT_NAME = ".corpusbridge/job.sh"
LOG_DIR = ".corpusbridge/logs"
_JOB_ID = "${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-}}"
_RUNTIME = re.compile(r"^[A-Za-z0-9_./-]+$")


@dataclass(frozen=True)
class Container:
    """An Apptainer/Singularity image; the scratch dir is bound at the same path inside. `gpu` adds `--nv`, which
    brings the node's NVIDIA driver into the container (the payload's `--embedding-runtime torch` needs it)."""

    image: str
    runtime: str = "apptainer"
    binds: tuple[str, ...] = ()
    gpu: bool = False

    def prefix(self, scratch: str) -> list[str]:
        if not _RUNTIME.match(self.runtime):
            raise ValueError(f"container runtime {self.runtime!r} is not a program name (apptainer, singularity)")
        argv = [self.runtime, "exec", *(["--nv"] if self.gpu else [])]
        argv += ["--bind", f"{scratch}:{scratch}", "--pwd", scratch]
        for bind in self.binds:
            argv += ["--bind", bind]
        return [*argv, self.image]


# The image's digest for the payload's provenance ($CORPUSBRIDGE_IMAGE_DIGEST inside): the `IMAGE.sha256` sidecar
# scripts/build-image.sh writes, when it names the image and is not older than it, else a hash of the image (one
# read of it per index: keep the sidecar beside the image). Apptainer and Singularity pass a variable into the
# container, even under --cleanenv, as APPTAINERENV_<NAME> / SINGULARITYENV_<NAME>; the prefix follows the runtime
# so that neither prints its "... is set, but ... is preferred" notice. Arguments: the image, the prefix.
_DIGEST_FUNCTION = r"""corpusbridge_image_digest() {
  local hex name digest=""
  if [ -f "$1.sha256" ] && [ ! "$1.sha256" -ot "$1" ] && read -r hex name < "$1.sha256" \
      && [ "${name#\*}" = "${1##*/}" ] && [ "${#hex}" -eq 64 ] && [ -z "${hex//[0-9a-f]/}" ]; then
    digest="sha256:$hex"
  elif [ -f "$1" ]; then
    echo "corpusbridge: no current $1.sha256 beside the image: hashing the image for its digest" >&2
    digest="sha256:$(sha256sum < "$1" | cut -d' ' -f1)"
  fi
  if [ -n "$digest" ]; then export "$2CORPUSBRIDGE_IMAGE_DIGEST=$digest"; fi
}"""


def digest_export(container: Container) -> str:
    """Batch script lines that hand the image's digest into the container (see _DIGEST_FUNCTION)."""
    prefix = "SINGULARITYENV_" if posixpath.basename(container.runtime) == "singularity" else "APPTAINERENV_"
    return _DIGEST_FUNCTION + "\n" + shlex.join(["corpusbridge_image_digest", container.image, prefix])


def marker_path(scratch: str, index: int) -> str:
    """Written by the script when index `index` exited 0: a retry skips indices that have one."""
    return posixpath.join(scratch, MARKER_DIR, str(index))


def log_paths(scratch: str, *, array: bool) -> tuple[str, str]:
    """sbatch --output/--error patterns: one pair of files per array index (%A_%a) or per job (%j).

    sbatch expands `%x` anywhere in these, so a `%` of the scratch path is written `%%`; without that the log
    went to a folder that does not exist and the job failed with no log at all. A backslash would switch the
    expansion off (and %A_%a with it), so it is refused."""
    if "\\" in scratch:
        raise ValueError(
            f"scratch dir {scratch!r} holds a backslash, which stops sbatch from naming the log files; "
            "choose a scratch_root without one"
        )
    stem = "%A_%a" if array else "%j"
    base = posixpath.join(scratch.replace("%", "%%"), LOG_DIR, stem)
    return base + ".out", base + ".err"


def log_file(scratch: str, job_id: str, index: int | None, stream: str) -> str:
    """The concrete file a pattern from log_paths() expands to, for tailing."""
    stem = f"{job_id}_{index}" if index is not None else job_id
    return posixpath.join(scratch, LOG_DIR, f"{stem}.{stream}")


def command_line(command: str | Sequence[str], scratch: str, container: Container | None = None) -> str:
    """The one line of shell that runs the user's command."""
    prefix = container.prefix(scratch) if container else []
    if isinstance(command, str):
        if not command.strip():
            raise ValueError("command is empty; give a program and its arguments")
        if container:
            return shlex.join([*prefix, "/bin/bash", "-c", command])
        return f"(\n{command}\n)"
    if not command:
        raise ValueError("command is an empty list; give a program and its arguments")
    return shlex.join([*prefix, *map(str, command)])


def batch_script(
    command: str | Sequence[str], scratch: str, *, job_name: str, container: Container | None = None
) -> str:
    """The full batch script text (bash)."""
    q_scratch = shlex.quote(scratch)
    return "\n".join(
        [
            "#!/bin/bash",
            f"# corpusbridge job {job_name}: generated, do not edit (a retry rewrites it)",
            "umask 077  # results carry text of the corpus; scratch is often shared by every user of the cluster",
            f'cd -- {q_scratch} || {{ echo "corpusbridge: cannot enter scratch dir "{q_scratch} >&2; exit 97; }}',
            'export CORPUSBRIDGE_INDEX="${SLURM_ARRAY_TASK_ID:-0}"',
            f"export CORPUSBRIDGE_SCRATCH={q_scratch}",
            *([digest_export(container)] if container else []),
            command_line(command, scratch, container),
            "rc=$?",
            f'if [ "$rc" -eq 0 ]; then mkdir -p {shlex.quote(MARKER_DIR)} && '
            f'echo "{_JOB_ID}" > {shlex.quote(MARKER_DIR)}/"$CORPUSBRIDGE_INDEX"; fi',
            'exit "$rc"',
            "",
        ]
    )
