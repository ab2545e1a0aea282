"""Small files are read whole, large ones streamed: both paths must yield the same records and the same sha256."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from corpusbridge.ingest import reader
from corpusbridge.ingest.parse import FileParse, parse_file
from corpusbridge.ingest.reader import HashingReader, WholeFile, open_source

LINES = b"".join(b'{"id": "%d", "title": "t%d", "abstract": "%s"}\n' % (i, i, b"word " * 50) for i in range(200))


def _parse(path: Path) -> tuple[list, FileParse]:
    info = FileParse()
    return list(parse_file(path, info)), info


@pytest.mark.parametrize("gzipped", [False, True])
def test_whole_and_streamed_reads_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gzipped: bool) -> None:
    path = tmp_path / ("works.jsonl.gz" if gzipped else "works.jsonl")
    path.write_bytes(gzip.compress(LINES) if gzipped else LINES)
    assert isinstance(open_source(path), WholeFile)
    whole, whole_info = _parse(path)
    monkeypatch.setattr(reader, "WHOLE_READ_MAX", 100)
    source = open_source(path)
    assert isinstance(source, HashingReader)
    source.close()
    streamed, streamed_info = _parse(path)
    assert [r.doc_id for r in streamed] == [r.doc_id for r in whole] and len(whole) == 200
    assert streamed_info.sha256 == whole_info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert streamed_info.bytes_read == whole_info.bytes_read == path.stat().st_size


def test_whole_file_peek_shows_the_head_without_consuming_it(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(LINES)
    source = open_source(path)
    assert isinstance(source, WholeFile)
    stream = source.content()
    assert stream.peek(10)[:10] == LINES[:10]  # type: ignore[attr-defined]
    assert stream.read() == LINES
