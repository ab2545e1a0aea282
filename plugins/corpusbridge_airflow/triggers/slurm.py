"""Deferred wait for SLURM jobs: no worker slot held while the cluster works.

Each trigger registers its job ids with the shared poller of its connection (one squeue per tick for all
triggers), streams new stdout/stderr into the task log, and fires exactly one event:
`{"status": "done", "outcomes": [...]}` once every index is terminal, or `{"status": "error", ...}` when the
controller stayed unreachable longer than the budget. Unreachable is never read as finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from corpusbridge.hpc import jobs, monitor, script
from corpusbridge.hpc.transport import Transport, TransportError
from corpusbridge_airflow.triggers.slurm_poller import SlurmPoller, Snapshot, poller_for

CLASSPATH = "corpusbridge_airflow.triggers.slurm.SlurmJobTrigger"
# A job id squeue no longer lists is asked about once more (scontrol) after this many clean ticks.
VANISHED_TICKS = 2


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
        done: dict[int, str] | None = None,
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
        self.done = {int(k): str(v) for k, v in (done or {}).items()}

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
                "done": {str(k): v for k, v in self.done.items()},
            },
        )

    def _poller(self) -> SlurmPoller:
        return poller_for(self.slurm_conn_id, _transport_factory(self.slurm_conn_id), self.poll_interval)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        poller = self._poller()
        token = poller.register(self.jobs, self.poll_interval)
        try:
            event = await _Watch(self, poller).until_done()
            done = {str(k): v for k, v in self.done.items()}
            event.update(scratch_dir=self.scratch_dir, is_array=self.is_array, done=done)
        finally:
            poller.unregister(token)
        yield TriggerEvent(event)

    async def on_kill(self) -> None:
        """The user marked the task failed or cleared it: cancel the SLURM jobs too."""
        self.log.warning("task killed by a user: scancel %s", ", ".join(self.jobs))
        await asyncio.wait_for(self._poller().call(jobs.cancel, sorted(self.jobs)), timeout=60)


class _Watch:
    """The state of one trigger's wait: tracker, log offsets, unreachable clock."""

    def __init__(self, trigger: SlurmJobTrigger, poller: SlurmPoller) -> None:
        self.t = trigger
        self.poller = poller
        self.tracker = monitor.JobTracker(dict(trigger.jobs))
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, str] = {}
        self.down_since: float | None = None
        self.absent_ticks: dict[str, int] = {}

    async def until_done(self) -> dict[str, Any]:
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

    def _unreachable(self, problem: str) -> dict[str, Any] | None:
        now = time.monotonic()
        self.down_since = self.down_since or now
        waited = now - self.down_since
        self.t.log.warning("SLURM unreachable for %.0fs (budget %.0fs): %s", waited, self.t.unreachable_budget, problem)
        if waited < self.t.unreachable_budget:
            return None
        return {
            "status": "error",
            "jobs": self.t.jobs,
            "message": f"SLURM controller unreachable for {waited:.0f}s (budget {self.t.unreachable_budget:.0f}s): "
            f"{problem}. Jobs {sorted(self.t.jobs)} may still be running; a retry re-attaches.",
        }

    async def _observe(self, snap: Snapshot) -> bool:
        """Record a snapshot, stream logs; True when every index is terminal (or its job vanished)."""
        changed = self.tracker.update(snap.result.rows)
        for row in changed:
            label = row.job_id if row.index is None else f"{row.job_id}_{row.index}"
            self.t.log.info("SLURM job %s: %s (reason: %s)", label, row.state, row.reason)
        await self._stream([(r.job_id, r.index if r.index is not None else 0) for r in changed])
        present = {row.job_id for row in snap.result.rows}
        for job in self.t.jobs:
            self.absent_ticks[job] = 0 if job in present else self.absent_ticks.get(job, 0) + 1
        vanished = {j for j, n in self.absent_ticks.items() if n >= VANISHED_TICKS}
        waiting = self.tracker.waiting()
        return all(job in vanished for job, _ in waiting)

    async def _finish(self) -> dict[str, Any]:
        self.tracker.update(await self.poller.final_states(self.t.jobs))
        await self._stream(list(self.tracker.seen), final=True)
        outcomes = [o.as_dict() for o in self.tracker.outcomes()]
        return {"status": "done", "jobs": self.t.jobs, "outcomes": outcomes}

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
