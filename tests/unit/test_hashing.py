from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from corpusbridge.hashing import BackgroundSha256, file_sha256


def test_file_sha256_streams(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3_000_000)
    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def test_background_sha256_gives_the_same_digest(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"y" * 3_000_000)
    assert BackgroundSha256(path).result() == file_sha256(path)


def test_background_sha256_raises_in_the_caller(tmp_path: Path) -> None:
    digest = BackgroundSha256(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        digest.result()
