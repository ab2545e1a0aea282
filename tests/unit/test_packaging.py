"""A non-editable install (the compute container) carries only the files pyproject.toml declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "include" / "corpusbridge"


def _declared(name: str, pattern: str) -> bool:
    """setuptools' package-data glob: `*` stays inside one folder (fnmatch's would cross `/`), `**` does not."""
    regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, name) is not None


def test_every_data_file_of_the_package_is_declared() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = declared["package-data"]["corpusbridge"]
    data = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    ]
    assert data, "expected package data (dictionary rules, migrations)"
    assert _declared("extract/sentences/rules.json", "extract/sentences/*.json")
    assert not _declared("extract/sentences/rules.json", "extract/*.json")
    assert [name for name in data if not any(_declared(name, pattern) for pattern in patterns)] == []
