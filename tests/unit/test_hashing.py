from __future__ import annotations

import hashlib
from pathlib import Path

from corpusbridge.hashing import file_sha256


def test_file_sha256_streams(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
