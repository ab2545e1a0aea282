"""The domain library ships into the compute container, which has no Airflow: it must never import it. Inside the
library, only the `corpusbridge` command (cli/) imports cli/: the payload and every stage sit below it."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "include" / "corpusbridge"


def _imported_modules(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in the file (function-level imports included)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)}


def test_library_never_imports_airflow() -> None:
    offenders = [str(p.relative_to(LIBRARY)) for p in LIBRARY.rglob("*.py") if "airflow" in _imported_roots(p)]
    assert offenders == [], f"include/corpusbridge must not import airflow: {offenders}"


def test_only_the_cli_imports_the_cli() -> None:
    """`python -m corpusbridge` (the package's __main__) is the CLI's own entry point."""
    allowed = [LIBRARY / "cli", LIBRARY / "__main__.py"]
    offenders = [
        str(p.relative_to(LIBRARY))
        for p in LIBRARY.rglob("*.py")
        if not any(p == a or a in p.parents for a in allowed)
        and any(name == "corpusbridge.cli" or name.startswith("corpusbridge.cli.") for name in _imported_modules(p))
    ]
    assert offenders == [], f"only include/corpusbridge/cli may import corpusbridge.cli: {offenders}"


def test_library_is_not_empty() -> None:
    assert len(list(LIBRARY.rglob("*.py"))) > 3


def test_the_cluster_payloads_load_no_workstation_code() -> None:
    """What runs on the nodes (the concept payload, the kNN payload) imports neither the database driver nor the
    workstation's stages: a node has no database, and an image carries what the payload needs, no more."""
    import subprocess
    import sys

    workstation = ("psycopg", "airflow", "corpusbridge.load", "corpusbridge.export.stage", "corpusbridge.ingest",
                   "corpusbridge.cli")  # fmt: skip
    probe = (
        "import sys, corpusbridge.extract.program, corpusbridge.graph.knn_payload; "
        f"print(sorted(m for m in sys.modules if m.startswith({workstation!r})))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
