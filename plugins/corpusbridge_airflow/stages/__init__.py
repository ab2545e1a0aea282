"""Plain functions the DAG tasks call: they resolve Connections and log progress."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from corpusbridge_airflow import settings

if TYPE_CHECKING:
    from corpusbridge.runs import Progress

log = logging.getLogger(__name__)


def log_progress(progress: Progress) -> None:
    """Every stage's progress callback in a task log: `str(progress)` is the line (done, rate, extra counters)."""
    log.info("%s", progress)


def operator_request(
    params: Mapping[str, Any],
    *,
    command: Sequence[str],
    array_size: int,
    stage_in: Sequence[str],
    stage_out: Sequence[str],
    local_output_dir: str,
    **extra: Any,
) -> dict[str, Any]:
    """A SlurmOperator's run-time arguments: the work given here, and from the trigger's Params the throttle, the
    time limit, the partition and the container (one reading of those Params for every SLURM step of a DAG)."""
    options: dict[str, Any] = {"time": params.get("time_limit") or "01:00:00"}
    if params.get("partition"):
        options["partition"] = params["partition"]
    return {
        "command": list(command),
        "array_size": array_size,
        "array_parallelism": params.get("array_parallelism"),
        "stage_in": list(stage_in),
        "stage_out": list(stage_out),
        "local_output_dir": local_output_dir,
        "sbatch_options": options,
        "container": settings.param_path(params["container"], "container", cluster=True)
        if params.get("container")
        else None,
        **extra,
    }
