"""The domain library ships into the compute container, which has no Airflow: it must never import it."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "include" / "corpusbridge"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_library_never_imports_airflow() -> None:
    offenders = [str(p.relative_to(LIBRARY)) for p in LIBRARY.rglob("*.py") if "airflow" in _imported_roots(p)]
    assert offenders == [], f"include/corpusbridge must not import airflow: {offenders}"


def test_library_is_not_empty() -> None:
    assert len(list(LIBRARY.rglob("*.py"))) > 3
