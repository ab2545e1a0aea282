"""SlurmOperator: stage in, submit (or re-attach), wait deferrably, report per index, stage out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException

from corpusbridge.hpc import jobs, naming, outcome, script
from corpusbridge.hpc.cluster import ClusterSettings
from corpusbridge.hpc.events import EventStatus, IndexOutcome, SlurmEvent, SlurmEventError, xcom_states
from corpusbridge.hpc.staging import SYMLINK_CHOICES
from corpusbridge.hpc.states import StatePolicy, StatePolicyError
from corpusbridge.hpc.transport import Transport
from corpusbridge_airflow.hooks.slurm import DEFAULT_CONN_ID, SlurmHook
from corpusbridge_airflow.links import JOB_IDS_XCOM, SCRATCH_XCOM, SlurmJobLink
from corpusbridge_airflow.triggers.slurm import SlurmJobTrigger, wait_in_worker

# Resubmissions of indices corpusbridge cancelled itself, per operator instance (a worker process). Only a kill of
# this task writes the cancel markers that trigger them, so each kill causes at most one; this bounds a loop in
# a non-deferrable wait.
MAX_RESUBMITS = 3


class SlurmOperator(BaseOperator):
    """Run `command` on a SLURM cluster over SSH, as one job or an array, without holding a worker slot.

    Each run gets a scratch dir on the cluster, derived from (dag, task, run, map index, parameters) and
    stable across retries. `stage_in` files land there under their base names (sha256-verified, resumable)
    and it is the command's working directory. The job is pre-flighted with `sbatch --test-only` (a bad
    partition or time limit fails at once with the scheduler's message), then submitted under a
    deterministic name: a retry or a crashed worker re-attaches to the job already queued or running
    instead of submitting it twice. While it runs, the task is deferred (one shared `squeue` per tick for
    all jobs of the connection) and remote stdout/stderr are streamed into the task log.

    The task fails if any index did not COMPLETE, naming each failed index, its state (FAILED + exit code,
    TIMEOUT, OUT_OF_MEMORY, CANCELLED and by whom, ...) and the tail of its stderr. A retry resubmits only
    those indices. Marking the task failed (or success) cancels the job (`scancel`, from the trigger's on_kill);
    a mark that lands before the triggerer started the trigger runs no on_kill, so a DAG adds a teardown calling
    `corpusbridge_airflow.stages.slurm_cleanup.cancel_stopped_stage` (corpus_compute does). Clearing a deferred
    task leaves the job running and the new try re-attaches. Should the new try re-attach to a job an old try is just
    cancelling, the indices cancelled that way are resubmitted, not reported as failed.

    :param command: what each index runs in the scratch dir. A list is an argv: every element is quoted, so a
        templated value stays one literal argument and `$VARS` are NOT expanded (the program reads them from
        its environment). A string is bash code and may use them: `$SLURM_ARRAY_TASK_ID` (arrays) and
        `$CORPUSBRIDGE_INDEX` (always set; 0 for a single job) say which index runs. Templated.
    :param slurm_conn_id: an `ssh` Connection; extras `scratch_root` (required), `partition`, `account`,
        `default_sbatch_options`, `container_runtime`, `key_file`, `host_key`, `state_policy`. Default
        `corpusbridge_hpc`.
    :param array_size: run indices 0..array_size-1 (`--array=0-N`); None submits a single job.
    :param array_parallelism: at most this many indices at once (`%K`).
    :param stage_in: local files or folders copied into the scratch dir before submission; each lands under its
        own name, checked (resolved on the cluster) to stay inside the scratch dir. Templated.
    :param stage_in_symlinks: what a symbolic link inside a stage_in folder does: `"refuse"` (default: the task
        fails before any transfer, naming it) or `"links"` (recreated on the cluster as a link with the same
        target text). A link is never followed, so a folder cannot carry e.g. `~/.ssh` along.
    :param stage_out: paths or globs relative to the scratch dir, fetched (sha256-verified) into
        `local_output_dir` after success. Each pattern and each file it matches (resolved on the cluster,
        links followed) must lie inside the scratch dir: `..`, `/etc/...` or a link leading out fail the task
        before any download. Templated.
    :param sbatch_options: e.g. `{"time": "00:30:00", "mem": "4G", "cpus": 4, "partition": "gpu"}`;
        overrides the connection's defaults. Templated.
    :param local_output_dir: where stage_out files go (required when stage_out is set). Templated.
    :param container: an Apptainer/Singularity image on the cluster; the command runs through
        `apptainer exec --bind <scratch>`. Templated.
    :param container_gpu: run the container with `--nv` (the node's NVIDIA driver inside), for GPU jobs; ask
        SLURM for the GPUs in `sbatch_options`, e.g. `{"gpus": 1}`.
    :param deferrable: wait in the triggerer, or in the worker (polling the same way). Default: `[operators]
        default_deferrable`, as for the providers' operators (Airflow's own default is False;
        airflow.cfg.example sets True).
    :param state_policy: what site-dependent states mean, over the connection's `state_policy` extra, e.g.
        `{"PREEMPTED": "wait"}` where preempted jobs are requeued, `{"SPECIAL_EXIT": "fail"}` where held jobs are
        never released (see corpusbridge.hpc.states.POLICY_CHOICES).
    :param poll_interval: seconds between polls.
    :param unreachable_budget: how long the controller or SSH may stay unreachable before the task fails
        (the job is not cancelled; a retry re-attaches).
    :param work_key: what identifies the work across DAG runs, e.g. the sha256 of its input. When set it takes the
        run id's place in the job name and scratch dir, so a later run of the same work (same arguments) re-attaches
        to the job still queued or running, or finds its indices done, instead of submitting it again. Default: the
        run id (each run is its own work).
    :return (XCom): `{"job_ids", "states" {"<job>_<index>": state}, "outcomes", "scratch_dir", "outputs"}`; the job
        ids are also pushed as `slurm_job_ids` once submitted (the task's `SLURM job` link reads them).
    """

    template_fields: Sequence[str] = (
        "command",
        "stage_in",
        "stage_out",
        "sbatch_options",
        "local_output_dir",
        "container",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"sbatch_options": "json", "command": "bash"}
    ui_color = "#d6e9f8"
    # The task's `SLURM job` button, once `[corpusbridge] slurm_job_url` is set (links.py).
    operator_extra_links = (SlurmJobLink(),)

    def __init__(
        self,
        *,
        command: str | Sequence[str],
        slurm_conn_id: str = DEFAULT_CONN_ID,
        array_size: int | None = None,
        array_parallelism: int | None = None,
        stage_in: Sequence[str] = (),
        stage_in_symlinks: str = "refuse",
        stage_out: Sequence[str] = (),
        sbatch_options: dict[str, Any] | None = None,
        local_output_dir: str | None = None,
        container: str | None = None,
        container_gpu: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        poll_interval: float = 10.0,
        unreachable_budget: float = 600.0,
        stream_logs: bool = True,
        state_policy: dict[str, str] | None = None,
        work_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.command = command
        self.slurm_conn_id = slurm_conn_id
        self.array_size = array_size
        self.array_parallelism = array_parallelism
        self.stage_in = list(stage_in)
        self.stage_in_symlinks = stage_in_symlinks
        self.stage_out = list(stage_out)
        self.sbatch_options = dict(sbatch_options or {})
        self.local_output_dir = local_output_dir
        self.container = container
        self.container_gpu = container_gpu
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.unreachable_budget = unreachable_budget
        self.stream_logs = stream_logs
        self.state_policy = dict(state_policy or {})
        self.work_key = work_key
        self._job_ids: list[str] = []
        self._scratch: str | None = None
        self._resubmits = 0
        if array_size is not None and array_size < 1:
            raise ValueError(f"{self.task_id}: array_size must be >= 1 (or None for a single job), got {array_size}")
        if stage_in_symlinks not in SYMLINK_CHOICES:
            raise ValueError(
                f"{self.task_id}: stage_in_symlinks must be one of {SYMLINK_CHOICES}, got {stage_in_symlinks!r}"
            )
        try:
            StatePolicy.from_mapping(self.state_policy)
        except StatePolicyError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from None

    # --- building the job -------------------------------------------------------------------------------

    def _parameters(self) -> dict[str, Any]:
        """What defines the work: part of the job name, so changing any of it never re-attaches."""
        return {
            "command": self.command,
            "array_size": self.array_size,
            "array_parallelism": self.array_parallelism,
            "stage_in": [Path(p).name for p in self.stage_in],
            "stage_out": self.stage_out,
            "sbatch_options": self.sbatch_options,
            "container": self.container,
            # Only when set: every job name made before this option existed stays the same.
            **({"container_gpu": True} if self.container_gpu else {}),
            **({"stage_in_symlinks": self.stage_in_symlinks} if self.stage_in_symlinks != "refuse" else {}),
        }

    def job_spec(self, context: Any, settings: Any) -> jobs.JobSpec:
        ti = context["ti"]
        digest = naming.input_hash(self._parameters())
        run = f"work:{self.work_key}" if self.work_key else context["run_id"]
        key = naming.WorkKey(ti.dag_id, ti.task_id, run, getattr(ti, "map_index", -1), digest)
        runtime = settings.container_runtime or "apptainer"
        container = script.Container(self.container, runtime, gpu=self.container_gpu) if self.container else None
        return jobs.JobSpec(
            command=self.command,
            scratch=naming.scratch_dir(settings.scratch_root, key),
            job_name=naming.job_name(key),
            array_size=self.array_size,
            parallelism=self.array_parallelism,
            options={**settings.sbatch_defaults(), **self.sbatch_options},
            container=container,
        )

    # --- the task ---------------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        if self.stage_out and not self.local_output_dir:
            raise AirflowException(
                f"{self.task_id}: stage_out is set but local_output_dir is not; say where to put the fetched files"
            )
        hook = SlurmHook(self.slurm_conn_id)
        spec = self.job_spec(context, hook.settings)
        self.log.info("SLURM job %s, scratch dir %s", spec.job_name, spec.scratch)
        self._stage_in(hook.transport, spec.scratch)
        return self._submit_and_wait(context, hook, spec)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            parsed = SlurmEvent.from_dict(event)
        except SlurmEventError as exc:
            raise AirflowException(f"{self.task_id}: the SLURM trigger returned an unexpected event: {exc}") from None
        self._job_ids, self._scratch = sorted(parsed.jobs), parsed.scratch_dir
        return self._complete(context, SlurmHook(self.slurm_conn_id), parsed)

    def on_kill(self) -> None:
        """Worker-side kill (non-deferrable wait): cancel what this try submitted or attached to, with a cancel
        marker, so that a next try resubmits those indices rather than failing on them."""
        if self._job_ids:
            self.log.warning("task killed: scancel %s", ", ".join(self._job_ids))
            jobs.cancel(SlurmHook(self.slurm_conn_id).transport, self._job_ids, scratch=self._scratch)

    # --- pieces -----------------------------------------------------------------------------------------

    def _policy(self, settings: ClusterSettings) -> StatePolicy:
        return settings.state_policy.merged(StatePolicy.from_mapping(self.state_policy))

    def _submit_and_wait(self, context: Any, hook: SlurmHook, spec: jobs.JobSpec) -> dict[str, Any]:
        policy = self._policy(hook.settings)
        try:
            submission = jobs.submit_or_reattach(hook.transport, spec, policy)
        except jobs.SlurmPreflightRejected as exc:
            if exc.transient:
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{exc}. The cluster refuses these sbatch options as they are, so no retry: fix them (the partition, "
                "time limit, account or sbatch options this task was given) and clear the task"
            ) from None
        self._log_submission(submission)
        self._job_ids, self._scratch = sorted(submission.jobs), spec.scratch
        if self._job_ids:  # for the SLURM job link while the task waits, and for the run's teardown if it is stopped
            context["ti"].xcom_push(key=JOB_IDS_XCOM, value=self._job_ids)
            context["ti"].xcom_push(key=SCRATCH_XCOM, value=self._scratch)
        trigger = self._trigger(submission, spec, policy)
        if not submission.jobs:
            return self._complete(context, hook, trigger.event(EventStatus.DONE))
        if self.deferrable:
            hook.close()
            self.defer(trigger=trigger, method_name="execute_complete")
        return self._complete(context, hook, wait_in_worker(trigger))

    def _trigger(self, submission: jobs.Submission, spec: jobs.JobSpec, policy: StatePolicy) -> SlurmJobTrigger:
        return SlurmJobTrigger(
            slurm_conn_id=self.slurm_conn_id,
            jobs=dict(submission.jobs),
            done=submission.done,
            scratch_dir=spec.scratch,
            is_array=spec.is_array,
            poll_interval=self.poll_interval,
            unreachable_budget=self.unreachable_budget,
            stream_logs=self.stream_logs,
            state_policy=policy.as_dict(),
        )

    def _log_submission(self, sub: jobs.Submission) -> None:
        if sub.done:
            self.log.info("indices already completed by an earlier try (skipped): %s", sorted(sub.done))
        for job_id, indices in sub.reattached.items():
            self.log.info("re-attached to SLURM job %s (indices %s), not resubmitting", job_id, indices)
        for job_id, indices in sub.submitted.items():
            self.log.info(
                "submitted SLURM job %s for indices %s; pre-flight (sbatch --test-only): job %s %s",
                job_id,
                indices,
                job_id,
                sub.preflight,
            )

    def _stage_in(self, transport: Transport, scratch: str) -> None:
        if not self.stage_in:
            return
        from corpusbridge.hpc import staging

        symlinks: staging.Symlinks = "links" if self.stage_in_symlinks == "links" else "refuse"
        result = staging.stage_in(transport, [Path(p) for p in self.stage_in], scratch, symlinks=symlinks)
        self.log.info(
            "staged in %d file(s): %d copied, %d skipped (already there, hash verified), %d repaired; "
            "%.1f MB at %.1f MB/s",
            len(result.files),
            len(result.files) - result.skipped - result.repaired,
            result.skipped,
            result.repaired,
            result.bytes / 1e6,
            result.mb_per_s,
        )

    def _stage_out(self, transport: Transport, scratch: str) -> list[str]:
        if not self.stage_out:
            return []
        from corpusbridge.hpc import staging

        result = staging.fetch(transport, self.stage_out, Path(str(self.local_output_dir)), within=scratch)
        self.log.info(
            "fetched %d file(s) into %s: %.1f MB at %.1f MB/s (%d already there)",
            len(result.files),
            self.local_output_dir,
            result.bytes / 1e6,
            result.mb_per_s,
            result.skipped,
        )
        return [f.target for f in result.files]

    def _complete(self, context: Any, hook: SlurmHook, event: SlurmEvent) -> dict[str, Any]:
        try:
            if event.status is not EventStatus.DONE:
                raise AirflowException(f"{self.task_id}: {event.message}")
            scratch_dir = str(event.scratch_dir)
            verdict = outcome.resolve(hook.transport, event)
            if verdict.resubmit and self._resubmits < MAX_RESUBMITS:
                return self._resubmit(context, hook, verdict.resubmit)
            failed = [o for o in verdict.outcomes if not o.ok]  # resubmits exhausted: cancelled is a failure
            if failed:
                message = outcome.failure_message(self.task_id, hook.transport, failed, scratch_dir, event.is_array)
                raise AirflowException(message)
            outputs = self._stage_out(hook.transport, scratch_dir)
        finally:
            hook.close()
        return _xcom(verdict.outcomes, scratch_dir, outputs)

    def _resubmit(self, context: Any, hook: SlurmHook, indices: list[int]) -> dict[str, Any]:
        """Indices corpusbridge cancelled itself while this try waited on them (a clear raced the old try's kill)."""
        self._resubmits += 1
        self.log.warning(
            "indices %s were cancelled by corpusbridge on behalf of an earlier try (cleared or killed while this "
            "try re-attached): resubmitting them",
            indices,
        )
        return self._submit_and_wait(context, hook, self.job_spec(context, hook.settings))


def _xcom(outcomes: list[IndexOutcome], scratch_dir: str, outputs: list[str]) -> dict[str, Any]:
    return {
        "job_ids": sorted({o.job_id for o in outcomes if o.job_id}),
        "states": xcom_states(outcomes),
        "outcomes": [o.to_dict() for o in outcomes],
        "scratch_dir": scratch_dir,
        "outputs": outputs,
    }
