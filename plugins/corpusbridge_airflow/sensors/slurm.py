"""SlurmJobSensor: wait (deferrably) for SLURM jobs submitted elsewhere, and fail if any index failed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowException

from corpusbridge.hpc import jobs, outcome
from corpusbridge.hpc.events import EventStatus, SlurmEvent, SlurmEventError, xcom_states
from corpusbridge.hpc.states import StatePolicy, StatePolicyError
from corpusbridge_airflow.hooks.slurm import DEFAULT_CONN_ID
from corpusbridge_airflow.triggers.slurm import SlurmJobTrigger, wait_in_worker


class SlurmJobSensor(BaseSensorOperator):
    """Succeed when every index of the given SLURM job ids has COMPLETED; fail naming those that did not.

    Deferrable when `[operators] default_deferrable` says so (airflow.cfg.example does): the wait runs in the triggerer
    on the shared poller (one squeue per tick for all deferred SLURM tasks of the connection); with
    `deferrable=False` the same wait runs in the worker. It never submits or cancels anything on its own;
    marking the task failed does cancel the watched jobs, as the operator does (clearing it does not).

    :param job_ids: a job id or a list (templated), e.g. `"{{ ti.xcom_pull('submit') }}"`.
    :param state_policy: what site-dependent states mean, e.g. `{"PREEMPTED": "wait"}` (as for SlurmOperator;
        the connection's `state_policy` extra is not read, the sensor opens no connection of its own).
    :return (XCom): `{"job_ids", "states" {"<job>_<index>": state}, "outcomes"}`, the operator's shape.
    """

    template_fields: Sequence[str] = ("job_ids",)

    def __init__(
        self,
        *,
        job_ids: str | Sequence[str],
        slurm_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        poll_interval: float = 10.0,
        unreachable_budget: float = 600.0,
        state_policy: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.job_ids = job_ids
        self.slurm_conn_id = slurm_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.unreachable_budget = unreachable_budget
        self.state_policy = dict(state_policy or {})
        try:
            StatePolicy.from_mapping(self.state_policy)
        except StatePolicyError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from None

    def _ids(self) -> list[str]:
        raw = [self.job_ids] if isinstance(self.job_ids, str | int) else list(self.job_ids)
        ids = [str(j).strip() for part in raw for j in str(part).split(",") if str(j).strip()]
        if not ids:
            raise AirflowException(f"{self.task_id}: job_ids is empty")
        return ids

    def _trigger(self) -> SlurmJobTrigger:
        return SlurmJobTrigger(
            slurm_conn_id=self.slurm_conn_id,
            jobs=dict.fromkeys(self._ids()),
            poll_interval=self.poll_interval,
            unreachable_budget=self.unreachable_budget,
            stream_logs=False,
            state_policy=self.state_policy,
        )

    def execute(self, context: Any) -> dict[str, Any]:
        trigger = self._trigger()
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete", timeout=self.execution_timeout)
        return self._complete(wait_in_worker(trigger))

    def poke(self, context: Any) -> bool:  # pragma: no cover - execute() is overridden
        raise NotImplementedError

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            parsed = SlurmEvent.from_dict(event)
        except SlurmEventError as exc:
            raise AirflowException(f"{self.task_id}: unexpected trigger event: {exc}") from None
        return self._complete(parsed)

    def _complete(self, event: SlurmEvent) -> dict[str, Any]:
        if event.status is not EventStatus.DONE:
            raise AirflowException(f"{self.task_id}: {event.message}")
        verdict = outcome.decide(event, jobs.Markers())
        if verdict.failed:
            raise AirflowException(outcome.failure_message(self.task_id, None, verdict.failed, None, True))
        return {
            "job_ids": sorted(event.jobs),
            "states": xcom_states(verdict.outcomes),
            "outcomes": [o.to_dict() for o in verdict.outcomes],
        }
