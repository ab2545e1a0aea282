"""Deferred wait for SLURM jobs: no worker slot held while the cluster works.

Each trigger registers its job ids with the shared poller of its connection (one squeue per tick for all
triggers), streams new stdout/stderr into the task log, and fires exactly one event, a
`corpusbridge.hpc.events.SlurmEvent`: DONE with every index's outcome, or ERROR when the controller stayed
unreachable longer than the budget. Unreachable is never read as finished, and a line squeue printed that
cannot be read is logged as what it is, never as an unreachable controller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from corpusbridge.hpc import jobs, monitor, script
from corpusbridge.hpc.events import EventStatus, SlurmEvent, index_map
from corpusbridge.hpc.states import StatePolicy
from corpusbridge.hpc.stopped import STOPPED_STATES
from corpusbridge.hpc.transport import Transport, TransportError
from corpusbridge_airflow.triggers.slurm_poller import SlurmPoller, Snapshot, poller_for

CLASSPATH = "corpusbridge_airflow.triggers.slurm.SlurmJobTrigger"
# Task instance states in which a user's action means "stop the work": only then does on_kill cancel the jobs.
# A cleared task is back to none/scheduled/queued: its next try re-attaches to the very same jobs. The same set
# decides the run's teardown (corpusbridge.hpc.stopped), which cancels when no trigger was there to be killed.
_STOPPED_BY_USER = STOPPED_STATES
UNKNOWN_STATE = "unknown"


def cancel_on_kill(ti_state: str | None) -> bool:
    """Whether a killed trigger cancels its SLURM jobs, given its task instance's state after the user's action.

    Marked failed/success: cancel. Cleared (no state yet, or already scheduled for the next try): leave the jobs
    running for that try to re-attach to. Unknown (the state could not be read): cancel, with a cancel marker,
    so that a new try resubmits what this cancels instead of failing on it.
    """
    if ti_state == UNKNOWN_STATE:
        return True
    return ti_state in _STOPPED_BY_USER


def _transport_factory(conn_id: str):
    def build() -> Transport:
        from corpusbridge_airflow.hooks.slurm import SlurmHook

        return SlurmHook(slurm_conn_id=conn_id).get_transport()

    return build


class SlurmJobTrigger(BaseTrigger):
    """Wait for SLURM jobs `{job id: [indices] or None}` (None: whatever indices the job has)."""

    def __init__(
        self,
        *,
        slurm_conn_id: str,
        jobs: dict[str, list[int] | None],
        scratch_dir: str | None = None,
        is_array: bool = True,
        poll_interval: float = 10.0,
        unreachable_budget: float = 600.0,
        stream_logs: bool = True,
        done: dict[int, str] | dict[str, str] | None = None,
        state_policy: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.slurm_conn_id = slurm_conn_id
        self.jobs = {str(k): (list(v) if v is not None else None) for k, v in jobs.items()}
        self.scratch_dir = scratch_dir
        self.is_array = is_array
        self.poll_interval = float(poll_interval)
        self.unreachable_budget = float(unreachable_budget)
        self.stream_logs = stream_logs
        # Indices an earlier try completed: carried through to the event, because `dag.test()` drops defer kwargs.
        self.done = index_map(done or {})
        self.state_policy = StatePolicy.from_mapping(state_policy)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            CLASSPATH,
            {
                "slurm_conn_id": self.slurm_conn_id,
                "jobs": self.jobs,
                "scratch_dir": self.scratch_dir,
                "is_array": self.is_array,
                "poll_interval": self.poll_interval,
                "unreachable_budget": self.unreachable_budget,
                "stream_logs": self.stream_logs,
                "done": {str(k): v for k, v in sorted(self.done.items())},
                "state_policy": self.state_policy.as_dict(),
            },
        )

    def _poller(self) -> SlurmPoller:
        return poller_for(self.slurm_conn_id, _transport_factory(self.slurm_conn_id), self.poll_interval)

    def event(self, status: EventStatus, outcomes: Any = (), message: str = "") -> SlurmEvent:
        return SlurmEvent(status, self.jobs, tuple(outcomes), self.scratch_dir, self.is_array, dict(self.done), message)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = self._poller()
        token = poller.register(self.jobs, self.poll_interval)
        try:
            event = await _Watch(self, poller).until_done()
        finally:
            poller.unregister(token)
        yield TriggerEvent(event.to_dict())

    async def on_kill(self) -> None:
        """A user acted on the deferred task: cancel the SLURM jobs when it was stopped, not when it was cleared."""
        state = await self._task_state()
        if not cancel_on_kill(state):
            self.log.warning(
                "task state is now %r (cleared): leaving SLURM jobs %s running for the next try to re-attach to",
                state,
                ", ".join(self.jobs),
            )
            return
        self.log.warning("task stopped by a user (state %s): scancel %s", state, ", ".join(self.jobs))
        call = self._poller().call(jobs.cancel, sorted(self.jobs), scratch=self.scratch_dir)
        await asyncio.wait_for(call, timeout=60)

    async def _task_state(self) -> str | None:
        """This trigger's task instance state as the API server sees it now; UNKNOWN_STATE when it cannot be read."""
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return UNKNOWN_STATE
        try:
            from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
            from asgiref.sync import sync_to_async

            map_index = getattr(ti, "map_index", -1)
            states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
                dag_id=ti.dag_id,
                task_ids=[ti.task_id],
                run_ids=[ti.run_id],
                map_index=map_index if map_index is not None and map_index >= 0 else None,
            )
        except Exception as exc:  # no supervisor to ask (dag.test, tests): fall back to cancelling with a marker
            self.log.info("could not read the task state (%s): treating the kill as a stop", exc)
            return UNKNOWN_STATE
        return state_in_answer(states.get(ti.run_id, {}), ti.task_id, getattr(ti, "map_index", -1))


def wait_in_worker(trigger: SlurmJobTrigger) -> SlurmEvent:
    """Non-deferrable mode: the triggerer's wait, run in this worker; returns the event it fires."""
    return asyncio.run(_first_event(trigger))


async def _first_event(trigger: SlurmJobTrigger) -> SlurmEvent:
    async for event in trigger.run():
        return SlurmEvent.from_dict(event.payload)
    raise RuntimeError(f"the SLURM trigger for jobs {sorted(trigger.jobs)} ended without an event")


def state_in_answer(by_task: dict[str, Any], task_id: str, map_index: int | None) -> str | None:
    """The state in a `get_task_states` answer (keyed `task_id`, or `task_id_<map index>` for mapped tasks)."""
    for key in (f"{task_id}_{map_index}", task_id):
        if key in by_task:
            value = by_task[key]
            return None if value is None else str(getattr(value, "value", value))
    return UNKNOWN_STATE


class _Watch:
    """The state of one trigger's wait: tracker, log offsets, unreachable clock."""

    def __init__(self, trigger: SlurmJobTrigger, poller: SlurmPoller) -> None:
        self.t = trigger
        self.poller = poller
        self.tracker = monitor.JobTracker(dict(trigger.jobs), trigger.state_policy)
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, str] = {}
        self.down_since: float | None = None
        self.reported: set[str] = set()

    async def until_done(self) -> SlurmEvent:
        tick = 0
        while True:
            snap = await self.poller.next_snapshot(tick)
            tick = snap.tick
            if not set(self.t.jobs) <= snap.job_ids:
                continue  # a snapshot taken before we registered says nothing about our jobs
            problem = snap.result.unreachable
            if not problem:
                self.down_since = None
                if not await self._observe(snap):
                    continue
                try:
                    return await self._finish()
                except TransportError as exc:  # e.g. sshd restarting right as the job ended: ask again next tick
                    problem = f"reading final states: {exc}"
            if (event := self._unreachable(problem)) is not None:
                return event

    def _unreachable(self, problem: str) -> SlurmEvent | None:
        now = time.monotonic()
        self.down_since = self.down_since or now
        waited = now - self.down_since
        self.t.log.warning("SLURM unreachable for %.0fs (budget %.0fs): %s", waited, self.t.unreachable_budget, problem)
        if waited < self.t.unreachable_budget:
            return None
        message = (
            f"SLURM controller unreachable for {waited:.0f}s (budget {self.t.unreachable_budget:.0f}s): "
            f"{problem}. Jobs {sorted(self.t.jobs)} may still be running; a retry re-attaches."
        )
        return self.t.event(EventStatus.ERROR, message=message)

    async def _observe(self, snap: Snapshot) -> bool:
        """Record a snapshot, stream logs; True when the tracker says the wait is over."""
        self._report_unreadable(snap.result)
        changed = self.tracker.observe(snap.result)
        for row in changed:
            label = row.job_id if row.index is None else f"{row.job_id}_{row.index}"
            # squeue's reason is "None" while a job runs: only a pending job's reason says anything
            reason = f" (reason: {row.reason})" if row.reason and row.reason != "None" else ""
            self.t.log.info("SLURM job %s: %s%s", label, row.state, reason)
        await self._stream([(r.job_id, r.index if r.index is not None else 0) for r in changed])
        return self.tracker.settled()

    def _report_unreadable(self, result: monitor.PollResult) -> None:
        """Each unreadable line of one of our jobs, once: the controller answered; its output is the problem."""
        for line in result.unreadable:
            if line.job_id in self.t.jobs and line.line not in self.reported:
                self.reported.add(line.line)
                self.t.log.warning("%s; its indices are left waiting", line)

    async def _finish(self) -> SlurmEvent:
        self.tracker.update(await self.poller.final_states(self.t.jobs))
        await self._stream(list(self.tracker.seen), final=True)
        return self.t.event(EventStatus.DONE, self.tracker.outcomes())

    async def _stream(self, also: list[tuple[str, int]], final: bool = False) -> None:
        """Append new remote stdout/stderr of running (and just-finished) indices to the task log."""
        if not (self.t.stream_logs and self.t.scratch_dir):
            return
        wanted = {}
        for job, index in {*self.tracker.active(), *also}:
            for stream in ("out", "err"):
                path = script.log_file(self.t.scratch_dir, job, index if self.t.is_array else None, stream)
                wanted[path] = self.offsets.get(path, 0)
        if not wanted:
            return
        try:
            chunks = await self.poller.call(monitor.tail_logs, wanted)
        except Exception as exc:  # logs are a convenience: never fail the wait over them
            self.t.log.warning("could not read remote logs this tick: %s", exc)
            return
        for path, (offset, text) in sorted(chunks.items()):
            self._emit(path, offset, text, final)

    def _emit(self, path: str, offset: int, text: str, final: bool) -> None:
        """Log whole lines only, so a line cut between two ticks is not printed as two."""
        buffered = self.partial.pop(path, "") + text
        lines = buffered.split("\n")
        rest = lines.pop()
        if rest and not final:
            self.partial[path] = rest
        elif rest:
            lines.append(rest)
        self.offsets[path] = offset
        name = path.rsplit("/", 1)[-1]
        for line in lines:
            self.t.log.info("[%s] %s", name, line)
