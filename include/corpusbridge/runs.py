"""The run contract every stage keeps: one lock per stage, one run-log row per run, one Progress type.

Each stage keeps its own run table (`<stage>_runs`) because its counts mean different things (records for
ingest, documents for sanitize, shards for export); what a *run* is — started, finished, status, seconds, error,
code version — is the same everywhere and written only here. The view `stage_runs` lists every stage's runs.

    with stage_lock(conn, Stage.EXPORT):
        summary = ExportSummary(run_id=start_run(conn, Stage.EXPORT, {"selection": ...}))
        with recorded_run(conn, Stage.EXPORT, summary):
            ...  # count into `summary`; a raised exception records the run as failed with its error
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from corpusbridge.version import code_version


class Stage(StrEnum):
    """The stages of the pipeline, in data-flow order; the value names the run table (`<value>_runs`)."""

    INGEST = "ingest"
    SANITIZE = "sanitize"
    INDEX = "index"
    EXPORT = "export"
    LOAD = "load"

    @property
    def run_table(self) -> str:
        return f"{self.value}_runs"


# Session advisory-lock keys, one per stage. Any constants work as long as every process agrees; ingest and
# sanitize keep the keys they had before the contract existed, so an old and a new process still exclude each other.
_LOCK_KEYS: dict[Stage, int] = {
    Stage.INGEST: 0x696E6773,  # "ings"
    Stage.SANITIZE: 0x636C6E73,  # "clns"
    Stage.INDEX: 0x696E6478,  # "indx"
    Stage.EXPORT: 0x65787074,  # "expt"
    Stage.LOAD: 0x6C6F6164,  # "load"
}


class StageBusy(RuntimeError):
    """Another run of `stage` holds its lock on this database; the message says what to wait for."""

    def __init__(self, stage: Stage, message: str | None = None) -> None:
        super().__init__(message or f"another {stage} run is in progress on this database; wait for it to finish")
        self.stage = stage


@contextmanager
def stage_lock(conn: psycopg.Connection, stage: Stage, *, shared: bool = False) -> Iterator[None]:
    """Hold `stage`'s lock for the block, or raise StageBusy at once (never wait: a stuck run must be visible).

    `shared=True` takes it in shared mode: a reader that must not overlap a writer of that stage (sanitize reads its
    watermark under ingest's shared lock) but may overlap other readers.
    """
    key = _LOCK_KEYS[stage]
    take, release = ("pg_try_advisory_lock_shared", "pg_advisory_unlock_shared") if shared else (
        "pg_try_advisory_lock", "pg_advisory_unlock")  # fmt: skip
    row = conn.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(take)), (key,)).fetchone()
    conn.commit()
    if not (row and row[0]):
        raise StageBusy(stage)
    try:
        yield
    finally:
        conn.rollback()  # an aborted transaction would refuse the unlock below
        conn.execute(sql.SQL("SELECT {}(%s)").format(sql.Identifier(release)), (key,))
        conn.commit()


@dataclass
class RunSummary:
    """Base of every stage's summary: the run id, seconds and status; subclasses add their counts as fields.

    Every field named in `columns` is a column of the stage's run table and is saved at each checkpoint; dicts go
    in as jsonb. `reconciled` is the stage's count invariant (always true unless a stage defines one).
    """

    columns: ClassVar[tuple[str, ...]] = ()

    run_id: int
    seconds: float = 0.0
    status: str = "running"
    _started: float = field(default_factory=time.monotonic, repr=False, compare=False)

    @property
    def reconciled(self) -> bool:
        return True

    def tick(self) -> float:
        """Update and return the seconds since the summary was made."""
        self.seconds = round(time.monotonic() - self._started, 3)
        return self.seconds

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        return asdict_values(data) | {"reconciled": self.reconciled}


def asdict_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plain JSON-ready values: nested dataclasses become dicts."""
    return {k: asdict(v) if hasattr(v, "__dataclass_fields__") else v for k, v in data.items()}


def start_run(conn: psycopg.Connection, stage: Stage, values: Mapping[str, Any] | None = None) -> int:
    """Insert a `running` row (with `values` for the stage's own columns) and return its run id; commits.

    Call it under the stage's lock: a row still `running` then belongs to a process that died, so it is closed as
    failed/interrupted first and the run log never shows two live runs of one stage.
    """
    values = dict(values or {}) | {"code_version": code_version()}
    table = sql.Identifier(stage.run_table)
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING run_id").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder(k) for k in values),
    )
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "UPDATE {} SET status = 'failed', error = 'interrupted', finished_at = now() WHERE status = 'running'"
            ).format(table)
        )
        row = conn.execute(insert, {k: _db_value(v) for k, v in values.items()}).fetchone()
    # Inside a transaction the caller left open (a read before the run started), `transaction()` is only a savepoint:
    # without this commit a later failure would roll the run row back with the caller's work, and no run is logged.
    conn.commit()
    assert row is not None
    return int(row[0])


def save_run(conn: psycopg.Connection, stage: Stage, summary: RunSummary, error: str | None = None) -> None:
    """Write the summary's counts, status and seconds into its run row (in the caller's transaction)."""
    summary.tick()
    values = {name: _db_value(getattr(summary, name)) for name in summary.columns}
    values |= {"status": summary.status, "seconds": summary.seconds, "error": error}
    assignments = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values]
    assignments.append(sql.SQL("finished_at = CASE WHEN {} = 'running' THEN NULL ELSE now() END").format(
        sql.Placeholder("status")))  # fmt: skip
    conn.execute(
        sql.SQL("UPDATE {} SET {} WHERE run_id = {}").format(
            sql.Identifier(stage.run_table), sql.SQL(", ").join(assignments), sql.Placeholder("run_id")
        ),
        values | {"run_id": summary.run_id},
    )


def checkpoint(conn: psycopg.Connection, stage: Stage, summary: RunSummary) -> None:
    """Save the counts so far as `running` and commit: what a person sees while a long run goes on."""
    summary.status = "running"
    save_run(conn, stage, summary)
    conn.commit()


@contextmanager
def recorded_run(conn: psycopg.Connection, stage: Stage, summary: RunSummary) -> Iterator[RunSummary]:
    """Run the block as `summary`'s run: `succeeded` when it returns, `failed` with the error when it raises."""
    try:
        yield summary
    except BaseException as exc:
        conn.rollback()
        summary.status = "failed"
        save_run(conn, stage, summary, f"{type(exc).__name__}: {exc}"[:2000])
        conn.commit()
        raise
    conn.rollback()  # nothing half-done of the block's own may ride along with the final row
    summary.status = "succeeded"
    save_run(conn, stage, summary)
    conn.commit()


def _db_value(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value


@dataclass(frozen=True)
class Progress:
    """One progress report of any stage: `done` of `total` units at a rate, plus optional extra counters.

    The Airflow layer logs `str(progress)`; the CLI may print it; tests read the fields.
    """

    stage: Stage
    done: int
    total: int | None
    seconds: float
    unit: str = "docs"
    extras: tuple[tuple[str, float], ...] = ()

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        line = f"{self.stage}: {self.done}{of} {self.unit}{pct}, {self.rate:.1f} {self.unit}/s"
        for name, amount in self.extras:
            per_second = amount / self.seconds if self.seconds > 0 else 0.0
            line += f", {amount:.0f} {name} ({per_second:.1f} {name}/s)"
        return line


ProgressCallback = Callable[[Progress], None]


class ProgressMeter:
    """Counts a stage's progress and reports it to a callback at most every `every_seconds` (and at the end)."""

    def __init__(
        self,
        stage: Stage,
        callback: ProgressCallback | None,
        *,
        total: int | None = None,
        unit: str = "docs",
        every_seconds: float = 5.0,
    ) -> None:
        self.stage, self.callback, self.total, self.unit, self.every = stage, callback, total, unit, every_seconds
        self.started = self.last = time.monotonic()
        self.done = 0
        self.extras: dict[str, float] = {}

    def advance(self, units: int, **extras: float) -> None:
        """Add `units` done (and amounts to the extra counters); report when the interval has passed."""
        self.done += units
        for name, amount in extras.items():
            self.extras[name] = self.extras.get(name, 0.0) + amount
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.report()

    def report(self) -> Progress:
        progress = Progress(
            self.stage, self.done, self.total, time.monotonic() - self.started, self.unit, tuple(self.extras.items())
        )
        if self.callback:
            self.callback(progress)
        return progress
