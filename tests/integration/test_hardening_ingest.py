"""Issue 13 items 3-5 on the real ingest and the embedded PostgreSQL: one bad file or record costs only itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpusbridge.ingest.stage import IngestOptions, IngestSummary, run_ingest

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


SECRET = b"root:$6$not-a-real-hash:19000:0:99999:7:::\n"


@pytest.fixture
def after_listing(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run a callback once the directory listing is complete and before any file is read (the real race)."""
    from corpusbridge.ingest import discover, stage

    hooks: list = []

    def listing_then_hook(*args, **kwargs):  # type: ignore[no-untyped-def]
        yield from discover.walk_files(*args, **kwargs)
        while hooks:  # once: a later run lists what the swap left
            hooks.pop()()

    monkeypatch.setattr(stage, "walk_files", listing_then_hook)
    return hooks.append


class _FifoWriter:
    """Writes a record (and 1 MiB of blank lines, more than a pipe holds) into a FIFO for anyone who reads it.

    `drained` tells, without any timing, whether some reader consumed the data: the old code opened the FIFO
    and read it (and without a writer, hung). The checked open closes it unread, so the writer gets EPIPE.
    """

    def __init__(self, path: Path) -> None:
        import threading

        self.path = path
        self.drained = False
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        payload = json.dumps({"id": "from-fifo", "title": "read through a FIFO"}).encode() + b"\n" * (1 << 20)
        try:
            with open(self.path, "wb") as f:  # blocks until a reader opens the FIFO
                f.write(payload)  # returns once a reader took all but the last pipe-full
                self.drained = True
        except OSError:
            pass

    def release(self) -> None:
        import os

        if self.thread.ident is None:
            return  # never started: the run failed before the swap
        os.close(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK))  # unblocks an open; the close, a write (EPIPE)
        self.thread.join(timeout=60)


@pytest.mark.parametrize("workers", [1, 2])
def test_files_swapped_after_listing_are_refused_and_the_rest_loads(db, tmp_path: Path, after_listing, workers) -> None:  # type: ignore[no-untyped-def]
    import os

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    secret = tmp_path / "shadow"
    secret.write_bytes(SECRET)
    for name in ("a", "link", "pipe", "gone", "z"):
        (corpus / f"{name}.jsonl").write_bytes(_good(3, name))
    writer = _FifoWriter(corpus / "pipe.jsonl")

    def swap() -> None:
        (corpus / "link.jsonl").unlink()
        (corpus / "link.jsonl").symlink_to(secret)
        (corpus / "pipe.jsonl").unlink()
        os.mkfifo(corpus / "pipe.jsonl")
        writer.thread.start()
        (corpus / "gone.jsonl").unlink()

    after_listing(swap)
    try:
        summary = _ingest(db, corpus, workers=workers)
    finally:
        writer.release()
    assert (summary.records_seen, summary.records_loaded, summary.records_quarantined) == (9, 6, 3)
    assert sorted(_quarantine(db)) == [
        ("gone.jsonl", "file", "FileVanished"),
        ("link.jsonl", "file", "NotRegularFile"),
        ("pipe.jsonl", "file", "NotRegularFile"),
    ]
    assert not writer.drained, "nothing read the FIFO"
    stored = b"".join(bytes(r[0] or b"") for r in db.execute("SELECT raw FROM quarantine"))
    assert b"root:" not in stored, "nothing was read through the symlink"
    ids = {r[0] for r in db.execute("SELECT doc_id FROM raw_documents")}
    assert ids == {f"id:{p}{i}" for p in ("a", "z") for i in range(3)}

    # The next run lists the symlink and the FIFO themselves: recorded once, not again and again.
    (corpus / "gone.jsonl").write_bytes(_good(3, "gone"))
    second = _ingest(db, corpus, workers=workers)
    assert second.records_loaded == 3 and second.files_new == 0
    assert sorted(_quarantine(db)) == [
        ("link.jsonl", "file", "NotRegularFile"),
        ("pipe.jsonl", "file", "NotRegularFile"),
    ]


def test_symlinks_fifos_and_hidden_files_present_at_listing_are_counted_and_visible(db, tmp_path: Path) -> None:
    import os

    from corpusbridge.ingest.quarantine import list_quarantine

    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.jsonl").write_bytes(_good(2))
    (corpus / ".hidden.jsonl").write_bytes(_good(2, "h"))
    (corpus / "link.jsonl").symlink_to(corpus / "a.jsonl")
    (corpus / "dirlink").symlink_to(corpus / "sub")
    os.mkfifo(corpus / "sub" / "pipe.jsonl")
    summary = _ingest(db, corpus)
    assert (summary.files_seen, summary.records_loaded, summary.records_quarantined) == (4, 2, 3)
    shown = {(Path(e.source_file).name, e.error_class, e.message) for e in list_quarantine(db)}
    assert shown == {
        ("link.jsonl", "NotRegularFile", "is a symbolic link (not followed); not read"),
        ("dirlink", "NotRegularFile", "is a symbolic link (not followed); not read"),
        ("pipe.jsonl", "NotRegularFile", "is a FIFO, not a regular file; not read"),
    }
    again = _ingest(db, corpus)
    assert again.files_unchanged == 4 and again.records_seen == 0


def test_a_file_name_that_is_not_utf8_is_ingested_under_an_escaped_name(db, tmp_path: Path) -> None:
    import os

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ok.jsonl").write_bytes(_good(2, "ok"))
    with open(os.path.join(os.fsencode(corpus), b"caf\xe9.jsonl"), "wb") as f:
        f.write(_good(2, "latin1"))
    summary = _ingest(db, corpus)
    assert (summary.files_seen, summary.records_loaded, summary.records_quarantined) == (2, 4, 0)
    (path,) = db.execute("SELECT path FROM source_files WHERE path LIKE 'non-utf8:%'").fetchone() or (None,)
    assert path == f"non-utf8:{corpus}/caf\\xe9.jsonl"
    assert _ingest(db, corpus).files_unchanged == 2, "a rerun recognises the escaped name"
    with open(os.path.join(os.fsencode(corpus), b"caf\xe9.jsonl"), "ab") as f:
        f.write(_good(1, "more"))
    changed = _ingest(db, corpus)
    assert (changed.files_changed, changed.records_seen, changed.records_quarantined) == (1, 3, 0)


def test_a_changed_known_file_swapped_for_a_fifo_mid_chunk_is_never_read(db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Swapped after the chunk's check, before staging: the hash comparison used to reopen it by name."""
    import os

    from corpusbridge.ingest import chunk

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "k.jsonl").write_bytes(_good(2, "k"))
    _ingest(db, corpus)
    (corpus / "k.jsonl").write_bytes(_good(3, "k"))  # changed: the next run compares it with the ledger's hash
    writer = _FifoWriter(corpus / "k.jsonl")
    real = chunk.checked_files

    def swap_then_check(identities):  # type: ignore[no-untyped-def]
        (corpus / "k.jsonl").unlink()
        os.mkfifo(corpus / "k.jsonl")
        writer.thread.start()
        return real(identities)

    monkeypatch.setattr(chunk, "checked_files", swap_then_check)
    try:
        summary = _ingest(db, corpus)
    finally:
        writer.release()
    assert (summary.files_changed, summary.records_seen, summary.records_quarantined) == (1, 1, 1)
    assert _quarantine(db) == [("k.jsonl", "file", "NotRegularFile")]
    assert not writer.drained, "nothing read the FIFO"
    assert db.execute("SELECT count(*) FROM raw_documents WHERE doc_id = 'id:from-fifo'").fetchone() == (0,)
