"""One squeue per tick per connection, shared by every SLURM trigger in the triggerer process.

Without this, 100 deferred tasks would run 100 squeue calls per tick (and, without ControlMaster, open 100
SSH logins): the controller and sshd MaxStartups would feel it long before the cluster does. Each trigger
registers its job ids; one background task polls the union and wakes all waiters with the same snapshot.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from corpusbridge.hpc import monitor
from corpusbridge.hpc.transport import Transport

MAX_BACKOFF = 60.0
# sshd allows MaxSessions (default 10) sessions per connection; past it, `ssh` with ControlMaster=auto quietly
# opens a NEW login. Staying below keeps every command of the triggerer on the one master.
MAX_CONCURRENT_COMMANDS = 6
# Triggers whose jobs end in the same tick ask for exit codes within this window: one command answers all.
FINAL_BATCH_WINDOW = 0.2


@dataclass
class PollerStats:
    """Counters a test or benchmark reads: squeue calls must equal ticks, whatever the job count."""

    ticks: int = 0
    squeue_calls: int = 0
    max_jobs_per_call: int = 0
    errors: int = 0
    tick_seconds: list[float] = field(default_factory=list)  # wall time of each squeue, newest last (bounded)


@dataclass
class Snapshot:
    tick: int
    result: monitor.PollResult
    job_ids: frozenset[str] = field(default_factory=frozenset)


class SlurmPoller:
    """Polls the union of all registered job ids of one connection, one squeue per tick."""

    def __init__(self, conn_id: str, transport_factory: Callable[[], Transport], interval: float) -> None:
        self.conn_id = conn_id
        self.interval = interval
        self.stats = PollerStats()
        self._factory = transport_factory
        self._transport: Transport | None = None
        self._watchers: dict[int, frozenset[str]] = {}
        self._tokens = itertools.count()
        self._latest: Snapshot | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_COMMANDS)
        self._batch: tuple[set[str], asyncio.Future[list[Any]]] | None = None
        self._use_sacct: bool | None = None

    async def transport(self) -> Transport:
        """The connection's one transport (one ControlMaster), created off the event loop on first use."""
        if self._transport is None:
            self._transport = await asyncio.to_thread(self._factory)
        return self._transport

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking library call with this poller's transport in a worker thread."""
        transport = await self.transport()
        async with self._slots:
            return await asyncio.to_thread(fn, transport, *args, **kwargs)

    async def final_states(self, job_ids: Iterable[str]) -> list[Any]:
        """Exit codes of finished jobs; requests arriving within FINAL_BATCH_WINDOW share one remote command."""
        wanted = set(job_ids)
        if self._batch is None:
            self._batch = (set(), asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().call_later(FINAL_BATCH_WINDOW, lambda: asyncio.ensure_future(self._flush()))
        ids, future = self._batch
        ids.update(wanted)
        rows = await asyncio.shield(future)
        return [row for row in rows if row.job_id in wanted]

    async def _flush(self) -> None:
        assert self._batch is not None
        (ids, future), self._batch = self._batch, None
        try:
            if self._use_sacct is None:
                self._use_sacct = await self.call(monitor.sacct_available)
            future.set_result(await self.call(monitor.exit_details, sorted(ids), use_sacct=self._use_sacct))
        except Exception as exc:  # every waiter sees the failure and retries on its next tick
            future.set_exception(exc)

    def register(self, job_ids: Iterable[str], interval: float) -> int:
        token = next(self._tokens)
        self._watchers[token] = frozenset(job_ids)
        self.interval = min(self.interval, interval)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"slurm-poller-{self.conn_id}")
        return token

    def unregister(self, token: int) -> None:
        self._watchers.pop(token, None)

    async def next_snapshot(self, after_tick: int) -> Snapshot:
        """Wait for a snapshot newer than `after_tick` (every waiter of a tick gets the same one)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._latest is not None and self._latest.tick > after_tick)
            assert self._latest is not None
            return self._latest

    async def _run(self) -> None:
        try:
            while self._watchers:
                await self._tick()
                await asyncio.sleep(self._delay())
        finally:
            await self._close_if_idle()

    async def _tick(self) -> None:
        ids = frozenset().union(*self._watchers.values())
        started = time.monotonic()
        try:
            result = await self.call(monitor.poll, sorted(ids))
        except Exception as exc:  # a transport that cannot even be built is "unreachable", not "finished"
            result = monitor.PollResult([], f"{type(exc).__name__}: {exc}")
        self.stats.tick_seconds = [*self.stats.tick_seconds[-999:], time.monotonic() - started]
        self.stats.ticks += 1
        self.stats.squeue_calls += 1
        self.stats.max_jobs_per_call = max(self.stats.max_jobs_per_call, len(ids))
        self._failures = self._failures + 1 if result.unreachable else 0
        self.stats.errors += bool(result.unreachable)
        async with self._changed:
            self._latest = Snapshot(self.stats.ticks, result, ids)
            self._changed.notify_all()

    def _delay(self) -> float:
        """The poll interval, doubled per consecutive failure (capped) so a down controller is not hammered."""
        return min(self.interval * (2 ** min(self._failures, 6)), max(MAX_BACKOFF, self.interval))

    async def _close_if_idle(self) -> None:
        if not self._watchers and self._transport is not None:
            transport, self._transport = self._transport, None
            await asyncio.to_thread(transport.close)
        _forget(self)


# One poller per (event loop, connection). The triggerer runs one loop; `dag.test()` runs each deferral in
# its own loop, and asyncio primitives must not cross loops.
_POLLERS: dict[tuple[int, str], SlurmPoller] = {}


def poller_for(conn_id: str, transport_factory: Callable[[], Transport], interval: float) -> SlurmPoller:
    key = (id(asyncio.get_running_loop()), conn_id)
    poller = _POLLERS.get(key)
    if poller is None:
        poller = _POLLERS[key] = SlurmPoller(conn_id, transport_factory, interval)
    return poller


def _forget(poller: SlurmPoller) -> None:
    for key, value in list(_POLLERS.items()):
        if value is poller and not poller._watchers:
            del _POLLERS[key]
