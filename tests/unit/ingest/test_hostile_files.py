"""What already held stays tested (issue 13): XML entities are never resolved from outside the record, entity
expansion cannot blow up, and a gzip bomb is read in bounded memory."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from corpusbridge.ingest.parse import FileParse, parse_file
from corpusbridge.ingest.records import Quarantined, Record

pytestmark = pytest.mark.faults

RECORD = (
    "<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><ArticleTitle>{title}</ArticleTitle>"
    "</Article></MedlineCitation></PubmedArticle>"
)


def _medline(tmp_path: Path, prolog: str, title: str) -> list[Record | Quarantined]:
    body = RECORD.format(pmid=1, title="ok") + RECORD.format(pmid=2, title=title) + RECORD.format(pmid=3, title="ok")
    path = tmp_path / "m.xml"
    path.write_text(f"{prolog}<PubmedArticleSet>{body}</PubmedArticleSet>")
    return list(parse_file(path, FileParse()))


def test_external_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    prolog = f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'
    items = _medline(tmp_path, prolog, "&xxe;")
    assert [type(i).__name__ for i in items] == ["Record", "Quarantined", "Record"]
    assert all("TOP-SECRET" not in repr(i) for i in items)


def test_a_billion_laughs_in_the_file_never_reaches_the_record_parser(tmp_path: Path) -> None:
    """Records are cut out of the file before parsing, so a DTD in the prolog defines nothing for them."""
    items = _medline(tmp_path, _laughs(), "&l9;")
    assert [type(i).__name__ for i in items] == ["Record", "Quarantined", "Record"]
    assert isinstance(items[1], Quarantined) and items[1].error_class == "MalformedXml"


def test_a_billion_laughs_handed_to_the_record_parser_is_refused_not_expanded() -> None:
    from corpusbridge.ingest.formats.xml_records import parse_element
    from corpusbridge.ingest.records import RecordError

    with pytest.raises(RecordError, match=r"amplification|undefined entity"):
        parse_element(f"{_laughs()}<t>&l9;</t>".encode())


def _laughs() -> str:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    return f'<!DOCTYPE l [<!ENTITY l0 "ha">{entities}]>'


_BOMB_CHILD = """
import sys
from pathlib import Path
from corpusbridge.ingest.parse import FileParse, parse_file
info = FileParse()
items = list(parse_file(Path(sys.argv[1]), info, cap=1 << 20))
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking pytest process
hwm_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
peak_mib = hwm_kib // 1024
print(len(items), items[0].error_class if items else "-", info.bytes_read, peak_mib)
"""


def test_a_gzip_bomb_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """2 GiB of one JSON line, gzipped to ~2 MB: quarantined as too large, peak memory far below its size."""
    path = tmp_path / "bomb.jsonl.gz"
    _write_gzip_zeros(path, b'{"id": "bomb", "title": "', 2 << 30)
    done = subprocess.run([sys.executable, "-c", _BOMB_CHILD, str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    count, error_class, bytes_read, peak_mib = done.stdout.split()
    assert (count, error_class, int(bytes_read)) == ("1", "RecordTooLarge", path.stat().st_size)
    assert int(peak_mib) < 200, f"peak RSS {peak_mib} MiB for a 2 GiB stream"


def _write_gzip_zeros(path: Path, head: bytes, size: int) -> None:
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container
    block = b"0" * (1 << 24)
    with path.open("wb") as f:
        f.write(packer.compress(head))
        for _ in range(size // len(block)):
            f.write(packer.compress(block))
        f.write(packer.flush())
