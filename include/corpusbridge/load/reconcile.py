"""Reconcile a batch: docs exported = docs processed = docs loaded, and which documents are missing when not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from corpusbridge.load import statements

STORED_MISSING_IDS = 100  # how many missing ids a run row and an error message carry; reconcile() returns all


@dataclass(frozen=True)
class Reconciliation:
    batch_id: str
    docs_exported: int
    docs_processed: int
    docs_loaded: int
    missing_doc_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.docs_exported == self.docs_processed == self.docs_loaded and not self.missing_doc_ids

    def as_dict(self, max_ids: int = STORED_MISSING_IDS) -> dict[str, Any]:
        """JSON-ready, with at most `max_ids` of the missing ids (and their full count)."""
        return {
            "batch_id": self.batch_id,
            "docs_exported": self.docs_exported,
            "docs_processed": self.docs_processed,
            "docs_loaded": self.docs_loaded,
            "docs_missing": len(self.missing_doc_ids),
            "missing_doc_ids": self.missing_doc_ids[:max_ids],
            "ok": self.ok,
        }

    def __str__(self) -> str:
        line = (
            f"batch {self.batch_id}: docs exported {self.docs_exported}, processed {self.docs_processed}, "
            f"loaded {self.docs_loaded}"
        )
        if self.ok:
            return line + " (reconciled)"
        shown = ", ".join(self.missing_doc_ids[:10])
        more = f" and {len(self.missing_doc_ids) - 10} more" if len(self.missing_doc_ids) > 10 else ""
        return f"{line}: NOT reconciled, {len(self.missing_doc_ids)} missing ({shown}{more})"


class ReconciliationError(RuntimeError):
    """The batch's counts differ; the message lists the first missing ids, `reconciliation` holds them all."""

    def __init__(self, reconciliation: Reconciliation) -> None:
        super().__init__(
            f"{reconciliation}; load the missing shards again (re-fetch or recompute them), or export those "
            "documents in a new batch"
        )
        self.reconciliation = reconciliation


def reconcile(conn: psycopg.Connection, batch_id: str) -> Reconciliation:
    """The batch's counts from the database (export_batch_documents, load_ledger, document_results); raises nothing
    on a mismatch: the caller decides to fail the run."""
    exported = _count(conn, statements.DOCS_EXPORTED, batch_id)
    missing = [row[0] for row in conn.execute(statements.MISSING_DOCS, (batch_id,))]
    return Reconciliation(
        batch_id=batch_id,
        docs_exported=exported,
        docs_processed=_count(conn, statements.DOCS_PROCESSED, batch_id),
        docs_loaded=exported - len(missing),  # each exported document is loaded or missing: one pass, not two
        missing_doc_ids=missing,
    )


def _count(conn: psycopg.Connection, query: Any, batch_id: str) -> int:
    row = conn.execute(query, (batch_id,)).fetchone()
    return int(row[0]) if row else 0
