"""A non-editable install (the compute container) carries only the files pyproject.toml declares."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "corpusbridge"


def test_every_data_file_of_the_package_is_declared() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = declared["package-data"]["corpusbridge"]
    data = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    ]
    assert data, "expected package data (dictionary rules, migrations)"
    assert [name for name in data if not any(fnmatch(name, pattern) for pattern in patterns)] == []
