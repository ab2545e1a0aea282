"""The sanitize stage: raw documents changed since the last run -> clean documents or rejects, in batches.

Incremental through the raw `change_seq` watermark; idempotent because a clean row is rewritten only when
its `clean_hash` changes; each batch is one transaction (COPY into `sanitize_staging`, then set-based statements),
so a crash loses at most one batch and a rerun converges to the state of one clean run. Run bookkeeping is the
run contract of `corpusbridge.runs`; the SQL is in `corpusbridge.sanitize.statements`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

from corpusbridge.config import worker_count
from corpusbridge.processes import worker_pool
from corpusbridge.runs import (
    ProgressCallback,
    ProgressMeter,
    RunSummary,
    Stage,
    StageBusy,
    checkpoint,
    recorded_run,
    stage_lock,
    start_run,
)
from corpusbridge.sanitize import statements
from corpusbridge.sanitize.records import CleanRecord, RawDocument, Reject, sanitize_record
from corpusbridge.version import code_version as current_code_version

DEFAULT_BATCH = 2000
# Below this many documents a batch is cleaned in-process: shipping it to workers would cost more than it saves.
_PARALLEL_MIN_BATCH = 500
Cleaner = Callable[[list[RawDocument]], list["CleanRecord | Reject"]]


@dataclass
class SanitizeSummary(RunSummary):
    """What one run did; `docs_in = docs_clean + docs_rejected` always holds."""

    columns: ClassVar[tuple[str, ...]] = (
        "docs_in", "docs_clean", "docs_rejected", "reject_reasons", "duplicates_linked", "rows_written",
    )  # fmt: skip

    from_seq: int = 0
    to_seq: int = 0
    docs_in: int = 0
    docs_clean: int = 0
    docs_rejected: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    duplicates_linked: int = 0
    rows_written: int = 0

    @property
    def reconciled(self) -> bool:
        return self.docs_in == self.docs_clean + self.docs_rejected

    @property
    def docs_per_second(self) -> float:
        return self.docs_in / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | {"docs_per_second": round(self.docs_per_second, 1)}


class SanitizeBusyError(StageBusy):
    """Another sanitize run, or an ingestion, is writing this database right now: retry when it has finished."""


def run_sanitize(
    conn: psycopg.Connection,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: ProgressCallback | None = None,
    code_version: str | None = None,
    workers: int | None = None,
    rebuild: bool = False,
) -> SanitizeSummary:
    """Sanitize every raw document changed since the last successful run (`rebuild`: every raw document, after a
    change of the cleaning rules); returns the run's counts.

    Cleaning (pure Python, the costly part) runs in `workers` processes (default: the cores granted);
    the database work stays on this connection, one transaction per batch. `progress` hears after every batch.
    A clean document is written only when its clean text changed, so a rebuild re-sends to indexing and export
    just the documents the new rules clean differently.
    """
    busy = "another `corpusbridge sanitize` run is in progress on this database; wait for it"
    with _lock_or_busy(conn, Stage.SANITIZE, busy, shared=False):
        from_seq, to_seq = _watermarks(conn)
        from_seq = 0 if rebuild else from_seq
        summary = SanitizeSummary(
            run_id=start_run(conn, Stage.SANITIZE, {"from_seq": from_seq, "to_seq": to_seq}),
            from_seq=from_seq,
            to_seq=to_seq,
        )
        with recorded_run(conn, Stage.SANITIZE, summary), _cleaner(workers or worker_count()) as clean:
            _run_batches(conn, summary, batch_size, progress, code_version or current_code_version(), clean)
    return summary


@contextmanager
def _lock_or_busy(conn: psycopg.Connection, stage: Stage, busy: str, *, shared: bool) -> Iterator[None]:
    """`stage_lock`, refusing with SanitizeBusyError(`busy`) when it is held."""
    with ExitStack() as stack:
        try:
            stack.enter_context(stage_lock(conn, stage, shared=shared))
        except StageBusy as exc:
            raise SanitizeBusyError(stage, busy) from exc
        yield


def _watermarks(conn: psycopg.Connection) -> tuple[int, int]:
    """(last run's upper bound, newest change_seq), read while no ingestion is writing.

    An ingest transaction still in flight may hold change_seq values below the newest visible one; reading the
    upper bound under ingestion's lock (held shared, for a moment only) means no such row can be skipped.
    """
    busy = "an ingestion run is writing raw documents; run sanitize when it has finished"
    with _lock_or_busy(conn, Stage.INGEST, busy, shared=True):
        row = conn.execute(statements.WATERMARKS).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@contextmanager
def _cleaner(workers: int) -> Iterator[Cleaner]:
    """A function cleaning one batch, in-process or across a process pool (results keep the batch order)."""

    def in_process(batch: list[RawDocument]) -> list[CleanRecord | Reject]:
        return [sanitize_record(raw) for raw in batch]

    if workers <= 1:
        yield in_process
        return
    with worker_pool(workers) as pool:  # spawned: no inherited connection or lock, and they die with us
        for _ in range(workers):
            pool.submit(int)  # start every worker now: they import while the first batch is read

        def parallel(batch: list[RawDocument]) -> list[CleanRecord | Reject]:
            if len(batch) < _PARALLEL_MIN_BATCH:
                return in_process(batch)
            return list(pool.map(sanitize_record, batch, chunksize=max(1, len(batch) // (workers * 4))))

        yield parallel


def _run_batches(
    conn: psycopg.Connection,
    summary: SanitizeSummary,
    batch_size: int,
    progress: ProgressCallback | None,
    code_version: str,
    clean: Cleaner,
) -> None:
    total = conn.execute(statements.COUNT_PENDING, (summary.from_seq, summary.to_seq)).fetchone()[0]  # type: ignore[index]
    meter = ProgressMeter(Stage.SANITIZE, progress, total=total, every_seconds=0)
    last = summary.from_seq
    while batch := _read_batch(conn, last, summary.to_seq, batch_size):
        _apply_batch(conn, summary, clean(batch), code_version)
        last = batch[-1].change_seq
        checkpoint(conn, Stage.SANITIZE, summary)
        meter.advance(len(batch))


def _read_batch(conn: psycopg.Connection, after: int, upto: int, limit: int) -> list[RawDocument]:
    return [RawDocument(*row) for row in conn.execute(statements.READ_BATCH, (after, upto, limit))]


def _apply_batch(
    conn: psycopg.Connection, summary: SanitizeSummary, results: list[CleanRecord | Reject], code_version: str
) -> None:
    """Stage the batch with COPY, then move it with set-based statements; all in the caller's transaction."""
    conn.execute(statements.CLEAR_STAGING)
    _copy_to_staging(conn, results)
    affected = conn.execute(statements.AFFECTED_HASHES).fetchone()[0] or []  # type: ignore[index]
    params = {"run_id": summary.run_id, "code_version": code_version}
    written = 0
    for statement in statements.MOVE_BATCH:
        written += conn.execute(statement, params).rowcount
    written += conn.execute(statements.RELINK_DUPLICATES, {"hashes": affected}).rowcount
    summary.duplicates_linked += conn.execute(statements.COUNT_LINKED).fetchone()[0]  # type: ignore[index]
    conn.execute(statements.CLEAR_STAGING)
    _count(summary, results, written)


def _count(summary: SanitizeSummary, results: list[CleanRecord | Reject], written: int) -> None:
    reasons = Counter(r.reason.value for r in results if isinstance(r, Reject))
    summary.docs_in += len(results)
    summary.docs_rejected += sum(reasons.values())
    summary.docs_clean += len(results) - sum(reasons.values())
    summary.reject_reasons = dict(Counter(summary.reject_reasons) + reasons)
    summary.rows_written += written


def _copy_to_staging(conn: psycopg.Connection, results: Iterable[CleanRecord | Reject]) -> None:
    with conn.cursor().copy(statements.COPY_STAGING) as copy:
        for result in results:
            copy.write_row(_staging_row(result))


def _staging_row(result: CleanRecord | Reject) -> tuple:
    if isinstance(result, Reject):
        return (result.doc_id, result.source_seq, "rejected") + (None,) * 12 + (result.reason.value, result.detail)
    r = result
    return (
        r.doc_id,
        r.source_seq,
        "clean",
        r.source_format,
        r.title,
        r.abstract,
        r.full_text,
        json.dumps(r.authors, ensure_ascii=False),
        r.year,
        r.venue,
        r.language,
        r.language_from,
        r.notes,
        r.text_hash,
        r.clean_hash,
        None,
        None,
    )
