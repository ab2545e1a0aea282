"""The parsers on outputs captured live from both sandbox SLURM versions (tests/fixtures/slurm/<version>/).

Every index of an array must come out exactly once, whichever form SLURM printed it in. The step form
(`18_[8-38:2%2]`, issue 14 item 1) is expected to fail until the parser reads it: those cases are xfail while
`expand_indices` refuses a step, and become plain tests once it accepts one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from corpusbridge.hpc import parsing
from corpusbridge.hpc.states import classify

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "slurm"
VERSIONS = ("22.05.8", "24.11.5")
PARSERS = {"sacct": parsing.parse_sacct, "squeue": parsing.parse_squeue, "scontrol": parsing.parse_scontrol}
EVENS = list(range(0, 39, 2))


def _reads_step_form() -> bool:
    try:
        return parsing.expand_indices("0-4:2") == [0, 2, 4]
    except ValueError:
        return False


def _captured() -> list[object]:
    cases: list[object] = []
    for version in VERSIONS:
        for path in sorted((FIXTURES / version).glob("*.txt")):
            kind = path.name.split("-")[0]
            if kind not in PARSERS or "invalid-id" in path.name:
                continue
            marks = []
            if ":2%" in path.read_text() and not _reads_step_form():
                marks = [pytest.mark.xfail(reason="step form not read yet (issue 14 item 1)", strict=True)]
            cases.append(pytest.param(path, id=f"{version}/{path.stem}", marks=marks))
    return cases


def _rows(path: Path) -> list[Any]:  # parsing's row type (IndexState, ArrayTaskState on the slurm branch)
    return PARSERS[path.name.split("-")[0]](path.read_text())


@pytest.mark.parametrize("path", _captured())
def test_every_index_comes_out_once_in_a_known_state(path: Path) -> None:
    rows = _rows(path)
    keys = Counter((r.job_id, r.index) for r in rows)
    assert all(n == 1 for n in keys.values()), f"{path.name}: an index twice: {keys.most_common(3)}"
    for row in rows:
        classify(row.state)  # raises on a state the table does not know
    if "step-form" in path.name:
        by_job = {r.job_id for r in rows if r.index is not None}
        assert len(by_job) == 1
        assert sorted(r.index for r in rows if r.index is not None) == EVENS


@pytest.mark.parametrize("version", VERSIONS)
def test_sacct_reads_cancelled_by_and_exit_codes(version: str) -> None:
    rows = {
        (r.job_id, r.index): r for r in parsing.parse_sacct((FIXTURES / version / "sacct-finished.txt").read_text())
    }
    states = Counter(r.state.split()[0] for r in rows.values())
    assert states == {"COMPLETED": 4, "FAILED": 1, "CANCELLED": 1}
    (failed,) = [r for r in rows.values() if r.state == "FAILED"]
    assert (failed.exit_code, failed.signal, failed.name) == (3, 0, "cb-fixture-fail")
    assert parsing.parse_sacct((FIXTURES / version / "sacct-unknown-id.txt").read_text()) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_captured_from_the_version_the_folder_names(version: str) -> None:
    assert (FIXTURES / version / "sinfo-version.txt").read_text().split() == ["slurm-wlm", version]
