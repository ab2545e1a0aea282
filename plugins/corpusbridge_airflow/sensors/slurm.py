"""SlurmJobSensor: wait (deferrably) for SLURM jobs submitted elsewhere, and fail if any index failed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

from corpusbridge.hpc import monitor
from corpusbridge_airflow.hooks.slurm import DEFAULT_CONN_ID
from corpusbridge_airflow.triggers.slurm import SlurmJobTrigger


class SlurmJobSensor(BaseSensorOperator):
    """Succeed when every index of the given SLURM job ids has COMPLETED; fail naming those that did not.

    Deferrable by default: the wait runs in the triggerer on the shared poller (one squeue per tick for all
    deferred SLURM tasks of the connection). It never submits or cancels anything on its own; marking the
    task failed does cancel the watched jobs, as the operator does.

    :param job_ids: a job id or a list (templated), e.g. `"{{ ti.xcom_pull('submit') }}"`.
    :return (XCom): `{"job_ids", "states" {"<job>_<index>": state}, "outcomes"}`.
    """

    template_fields: Sequence[str] = ("job_ids",)

    def __init__(
        self,
        *,
        job_ids: str | Sequence[str],
        slurm_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = True,
        poll_interval: float = 10.0,
        unreachable_budget: float = 600.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.job_ids = job_ids
        self.slurm_conn_id = slurm_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.unreachable_budget = unreachable_budget

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
        )

    def execute(self, context: Any) -> dict[str, Any]:
        trigger = self._trigger()
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete", timeout=self.execution_timeout)
        return self.execute_complete(context, asyncio.run(_first_event(trigger)))

    def poke(self, context: Any) -> bool:  # pragma: no cover - execute() is overridden
        raise NotImplementedError

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or "status" not in event:
            raise AirflowException(f"{self.task_id}: unexpected trigger event {event!r}")
        if event["status"] != "done":
            raise AirflowException(f"{self.task_id}: {event.get('message', event)}")
        outcomes = [monitor.IndexOutcome(**row) for row in event.get("outcomes", [])]
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise AirflowException(
                f"{self.task_id}: {len(failed)} SLURM index(es) did not complete:\n"
                + "\n".join(f"- {o.describe()}" for o in failed)
            )
        return {
            "job_ids": sorted(event["jobs"]),
            "states": {f"{o.job_id}_{o.index}": o.state for o in outcomes},
            "outcomes": [o.as_dict() for o in outcomes],
        }


async def _first_event(trigger: SlurmJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AirflowException("the SLURM trigger ended without an event")
