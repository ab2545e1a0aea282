"""The hash locks agree with what pyproject.toml and requirements.txt ask for, and with each other.

`make install` and `make image` install only from the locks, so a pin edited in pyproject.toml or requirements.txt
without `make lock` would silently not be installed; these tests catch that (the fix is always `make lock`)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
WORKSTATION = ROOT / "locks" / "workstation.txt"
COMPUTE = ROOT / "locks" / "compute.txt"
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: int


def read_lock(path: Path) -> dict[str, Pin]:
    """name -> Pin for every `name==version \\ --hash=...` entry of a uv-compiled requirements file."""
    pins: dict[str, Pin] = {}
    name = ""
    for line in path.read_text().splitlines():
        if m := _ENTRY.match(line):
            name = canonicalize_name(m.group(1))
            pins[name] = Pin(m.group(2), 0)
        elif name and _HASH.search(line):
            pins[name] = Pin(pins[name].version, pins[name].hashes + 1)
    return pins


def pinned(requirements: list[str]) -> dict[str, str]:
    """name -> version of each `==` requirement (extras dropped: the lock lists what they pull in separately)."""
    out = {}
    for text in requirements:
        req = Requirement(text)
        spec = [s for s in req.specifier if s.operator == "=="]
        assert spec, f"{text!r} is not pinned with ==; the project pins its direct dependencies"
        out[canonicalize_name(req.name)] = spec[0].version
    return out


def requirements_txt() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def model_pin() -> dict[str, str]:
    """The model the Makefile pins (installed --no-deps, so pyproject.toml cannot name it)."""
    m = re.search(r"^MODEL_PIN := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "Makefile has no `MODEL_PIN := name==version` line"
    return pinned([m.group(1)])


def _missing(wanted: dict[str, str], lock: dict[str, Pin]) -> dict[str, tuple[str, str | None]]:
    return {
        n: (v, lock[n].version if n in lock else None)
        for n, v in wanted.items()
        if n not in lock or lock[n].version != v
    }


@pytest.fixture(scope="module")
def workstation() -> dict[str, Pin]:
    return read_lock(WORKSTATION)


@pytest.fixture(scope="module")
def compute() -> dict[str, Pin]:
    return read_lock(COMPUTE)


def test_workstation_lock_has_every_pin_of_requirements_and_pyproject(workstation):
    wanted = pinned(requirements_txt()) | pinned(project()["dependencies"])
    wanted |= pinned(project()["optional-dependencies"]["dev"]) | model_pin()
    assert _missing(wanted, workstation) == {}, "pin -> (wanted, locked): run `make lock`"


def test_compute_lock_has_every_library_pin_and_the_model(compute):
    wanted = pinned(project()["dependencies"]) | model_pin()
    assert _missing(wanted, compute) == {}, "pin -> (wanted, locked): run `make lock`"


def test_compute_lock_shares_the_workstation_versions(workstation, compute):
    differ = {n: (p.version, workstation[n].version if n in workstation else None) for n, p in compute.items()}
    assert {n: v for n, v in differ.items() if v[0] != v[1]} == {}, "compute vs workstation version: `make lock`"


def test_compute_lock_has_no_airflow_and_no_dev_tools(compute):
    leaked = [n for n in compute if n.startswith("apache-airflow")]
    leaked += [n for n in pinned(project()["optional-dependencies"]["dev"]) if n in compute]
    assert leaked == []


def test_every_locked_package_carries_hashes(workstation, compute):
    assert len(workstation) > 100 and len(compute) > 20
    assert [n for n, p in (workstation | compute).items() if p.hashes == 0] == []
