"""One index run of either backend, on the run contract: its counts, and the block that runs it.

`index_run` holds the index stage's lock, opens the run row from the backend's watermark, records the outcome
and, when the run succeeds, moves the watermark in the same breath.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

from corpusbridge.index import watermark
from corpusbridge.index.watermark import Backend
from corpusbridge.runs import RunSummary, Stage, recorded_run, stage_lock, start_run


@dataclass
class IndexSummary(RunSummary):
    """What one index run did; `docs_in = docs_indexed + docs_deleted + docs_failed` always holds."""

    columns: ClassVar[tuple[str, ...]] = (
        "mode", "from_seq", "docs_in", "docs_indexed", "docs_deleted", "docs_failed", "index_name",
    )  # fmt: skip

    backend: str = "postgres"
    mode: str = "incremental"
    from_seq: int = 0
    to_seq: int = 0
    index_name: str | None = None
    docs_in: int = 0
    docs_indexed: int = 0
    docs_deleted: int = 0
    docs_failed: int = 0
    rows_written: int = 0
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return self.docs_in == self.docs_indexed + self.docs_deleted + self.docs_failed

    @property
    def docs_per_second(self) -> float:
        return self.docs_in / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | {"docs_per_second": round(self.docs_per_second, 1)}


@contextmanager
def index_run(conn: psycopg.Connection, backend: Backend, *, rebuild: bool) -> Iterator[IndexSummary]:
    """Run the block as one index run of `backend` (one index run at a time per database: StageBusy otherwise)."""
    with stage_lock(conn, Stage.INDEX):
        from_seq, to_seq = watermark.bounds(conn, backend, rebuild=rebuild)
        mode = "rebuild" if rebuild else "incremental"
        values = {"backend": backend, "mode": mode, "from_seq": from_seq, "to_seq": to_seq}
        summary = IndexSummary(
            run_id=start_run(conn, Stage.INDEX, values), backend=backend, mode=mode, from_seq=from_seq, to_seq=to_seq
        )
        with recorded_run(conn, Stage.INDEX, summary):
            yield summary
            _advance_watermark(conn, summary)


def _advance_watermark(conn: psycopg.Connection, summary: IndexSummary) -> None:
    # An unchanged watermark with nothing indexed is left alone: a no-change rerun writes no state row either.
    if summary.docs_in == 0 and summary.mode == "incremental":
        return
    watermark.advance(conn, summary.backend, summary.to_seq, summary.index_name, summary.docs_indexed)
    conn.commit()  # before the run row says succeeded: a crash in between leaves a finished index, run `failed`
