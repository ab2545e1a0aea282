"""Issue 13 items 3-5 on the real ingest and the embedded PostgreSQL: one bad file or record costs only itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbridge.ingest.run import IngestOptions, IngestSummary, run_ingest

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _good(n: int, prefix: str = "g") -> bytes:
    return b"".join(json.dumps({"id": f"{prefix}{i}", "title": f"Good record {i}"}).encode() + b"\n" for i in range(n))


def _ingest(db, corpus: Path, workers: int = 1) -> IngestSummary:  # type: ignore[no-untyped-def]
    summary = run_ingest(db, corpus, IngestOptions(workers=workers))
    assert summary.reconciled, summary
    return summary


def _quarantine(db) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    rows = db.execute("SELECT source_file, locator, error_class FROM quarantine ORDER BY quarantine_id").fetchall()
    return [(Path(f).name, loc, cls) for f, loc, cls in rows]


def test_hostile_records_cost_only_themselves(db, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    deep = b'{"id": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    digits = b'{"id": "big", "n": ' + b"7" * 5000 + b"}\n"
    (corpus / "a.jsonl").write_bytes(_good(2, "a") + deep + digits + _good(2, "b"))
    (corpus / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + _good(2, "c"))
    summary = _ingest(db, corpus)
    assert (summary.records_seen, summary.records_loaded, summary.records_quarantined) == (8, 6, 2)
    assert _quarantine(db) == [("a.jsonl", "line 3", "NestingTooDeep"), ("a.jsonl", "line 4", "NumberTooLong")]
    status = db.execute("SELECT status, records_seen FROM source_files WHERE path LIKE '%a.jsonl'").fetchone()
    assert status == ("partial", 6)
