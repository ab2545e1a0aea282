"""Index bookkeeping shared by every backend: the per-backend watermark, the run log, and its counts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import psycopg

log = logging.getLogger(__name__)

Backend = Literal["postgres", "elasticsearch"]
BACKENDS: tuple[Backend, ...] = ("postgres", "elasticsearch")


@dataclass
class IndexSummary:
    """What one index run did; `docs_in = docs_indexed + docs_deleted + docs_failed` always holds."""

    run_id: int
    backend: str
    mode: str
    from_seq: int
    to_seq: int
    index_name: str | None = None
    docs_in: int = 0
    docs_indexed: int = 0
    docs_deleted: int = 0
    docs_failed: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    status: str = "running"
    failure_reasons: dict[str, int] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def docs_per_second(self) -> float:
        return self.docs_in / self.seconds if self.seconds else 0.0

    def tick(self) -> None:
        self.seconds = time.monotonic() - self._started

    def as_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {**data, "docs_per_second": round(self.docs_per_second, 1)}


@dataclass(frozen=True)
class IndexProgress:
    docs_done: int
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.docs_done / self.seconds if self.seconds else 0.0


IndexProgressCallback = Callable[[IndexProgress], None]


def start_run(conn: psycopg.Connection, backend: Backend, *, rebuild: bool) -> IndexSummary:
    """Open a run from the backend's watermark (0 for a rebuild) up to the newest clean change."""
    watermark = conn.execute(
        "SELECT coalesce((SELECT watermark FROM index_state WHERE backend = %s), 0)", (backend,)
    ).fetchone()[0]  # type: ignore[index]
    newest = conn.execute(
        "SELECT greatest(coalesce((SELECT max(clean_seq) FROM clean_documents), 0),"
        " coalesce((SELECT max(clean_seq) FROM clean_document_removals), 0))"
    ).fetchone()[0]  # type: ignore[index]
    from_seq = 0 if rebuild else watermark
    mode = "rebuild" if rebuild else "incremental"
    run_id = conn.execute(
        "INSERT INTO index_runs (backend, mode, from_seq, to_seq) VALUES (%s, %s, %s, %s) RETURNING run_id",
        (backend, mode, from_seq, max(newest, from_seq)),
    ).fetchone()[0]  # type: ignore[index]
    conn.commit()
    return IndexSummary(run_id, backend, mode, from_seq, max(newest, from_seq))


def finish_run(conn: psycopg.Connection, summary: IndexSummary, error: BaseException | None = None) -> None:
    """Record the outcome; on success move the backend's watermark to the run's upper bound."""
    conn.rollback()
    summary.tick()
    summary.status = "failed" if error else "succeeded"
    conn.execute(
        "UPDATE index_runs SET status = %(status)s, mode = %(mode)s, from_seq = %(from_seq)s, docs_in = %(docs_in)s,"
        " docs_indexed = %(docs_indexed)s,"
        " docs_deleted = %(docs_deleted)s, docs_failed = %(docs_failed)s, index_name = %(index_name)s,"
        " seconds = %(seconds)s, error = %(error)s, finished_at = now() WHERE run_id = %(run_id)s",
        {**summary.as_dict(), "error": f"{type(error).__name__}: {error}" if error else None},
    )
    if not error:
        _advance_watermark(conn, summary)
    conn.commit()


def _advance_watermark(conn: psycopg.Connection, summary: IndexSummary) -> None:
    # An unchanged watermark with nothing indexed is left alone: a no-change rerun writes no state row either.
    if summary.docs_in == 0 and summary.mode == "incremental":
        return
    conn.execute(
        "INSERT INTO index_state (backend, watermark, index_name, docs_indexed) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (backend) DO UPDATE SET watermark = EXCLUDED.watermark,"
        " index_name = coalesce(EXCLUDED.index_name, index_state.index_name),"
        " docs_indexed = index_state.docs_indexed + EXCLUDED.docs_indexed, updated_at = now()",
        (summary.backend, summary.to_seq, summary.index_name, summary.docs_indexed),
    )


def report_progress(summary: IndexSummary, progress: IndexProgressCallback | None) -> None:
    summary.tick()
    if progress:
        progress(IndexProgress(summary.docs_in, summary.seconds))
