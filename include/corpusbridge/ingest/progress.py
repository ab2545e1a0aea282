"""Progress lines a person can read in a task log: files/s, records/s, MB/s, every few seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from corpusbridge.ingest.staging import FileResult


class Progress:
    def __init__(self, log: logging.Logger, total_files: int, every_seconds: float = 5.0) -> None:
        self.log, self.total, self.every = log, total_files, every_seconds
        self.started = self.last = time.monotonic()
        self.files = self.records = self.bytes = 0
        log.info("ingest: %d new or changed files to read", total_files)

    def files_parsed(self, results: Sequence[FileResult]) -> None:
        self.files += len(results)
        self.records += sum(r.records_seen for r in results)
        self.bytes += sum(r.bytes_read for r in results)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line("progress")

    def done(self, summary: Any) -> None:
        self._line("done")
        self.log.info(
            "ingest run %s: %d records seen = %d loaded + %d duplicate + %d quarantined%s",
            summary.run_id, summary.records_seen, summary.records_loaded, summary.records_duplicate,
            summary.records_quarantined, "" if summary.reconciled else "  ** COUNTS DO NOT RECONCILE **",
        )  # fmt: skip

    def _line(self, what: str) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.log.info(
            "ingest %s: %d/%d files, %d records, %.1f files/s, %.0f records/s, %.1f MB/s",
            what, self.files, self.total, self.records, self.files / elapsed, self.records / elapsed,
            self.bytes / elapsed / 1e6,
        )  # fmt: skip
