"""The payload command lines: what each backend runs, and that no argument is ever read by a shell."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from corpusbridge.compute.payload import extract_argv
from corpusbridge.compute.slurm import payload_argv

HOSTILE = "/scratch/x; touch /tmp/pwned $(id) `id`"


def _argv_dumper(tmp_path: Path) -> Path:
    """Stands in for `python`: prints the arguments it got, NUL-separated."""
    dumper = tmp_path / "dump-args"
    dumper.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done\n', encoding="utf-8")
    dumper.chmod(dumper.stat().st_mode | stat.S_IEXEC)
    return dumper


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, env={**os.environ, **env}, check=False, timeout=30)


def test_extract_argv_is_the_payload_command() -> None:
    argv = extract_argv("py", "m.json", "dict", "out", embeddings=False, workers=3)
    assert argv == ["py", "-m", "corpusbridge.extract", "--manifest", "m.json", "--dictionary", "dict", "--out",
                    "out", "--no-embeddings", "--workers", "3", "--json"]  # fmt: skip
    assert "--no-embeddings" not in extract_argv("py", "m", "d", "o", embeddings=True)


def test_payload_argv_appends_the_array_index_and_keeps_arguments_literal(tmp_path: Path) -> None:
    python = str(_argv_dumper(tmp_path))
    argv = payload_argv(HOSTILE + "/manifest.json", HOSTILE, "out dir", embeddings=True, python=python)
    proc = _run(argv, SLURM_ARRAY_TASK_ID="7")
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.decode().split("\0")[:-1]
    assert got == ["-m", "corpusbridge.extract", "--manifest", HOSTILE + "/manifest.json", "--dictionary", HOSTILE,
                   "--out", "out dir", "--json", "--index", "7"]  # fmt: skip
    assert not Path("/tmp/pwned").exists()


def test_payload_argv_outside_an_array_task_fails_clearly(tmp_path: Path) -> None:
    argv = payload_argv("m.json", "d", "o", embeddings=False, python=str(_argv_dumper(tmp_path)))
    env = {k: v for k, v in os.environ.items() if k != "SLURM_ARRAY_TASK_ID"}
    proc = subprocess.run(argv, capture_output=True, env=env, check=False, timeout=30)
    assert proc.returncode != 0 and b"SLURM_ARRAY_TASK_ID" in proc.stderr


def test_run_slurm_runs_the_container_through_the_batch_script(tmp_path: Path) -> None:
    """As the SlurmOperator's container=: the script binds the scratch dir and hands in the image's digest."""
    from corpusbridge.compute.slurm import _job_spec
    from corpusbridge.export.manifest import ExportManifest, write_manifest
    from corpusbridge.hpc import script

    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, ExportManifest("b-1", "fp", []))
    spec = _job_spec("/s", manifest, tmp_path / "dict", "v1", False, "python3", ("/img/cb.sqfs", "singularity"),
                     None, {}, 1, "")  # fmt: skip
    assert spec.container == script.Container("/img/cb.sqfs", "singularity")
    assert "singularity" not in spec.command and spec.command[:2] == ["sh", "-c"]
    text = script.batch_script(spec.command, spec.scratch, job_name=spec.job_name, container=spec.container)
    assert "corpusbridge_image_digest /img/cb.sqfs SINGULARITYENV_" in text
    assert json.dumps(spec.command)  # plain strings only


@pytest.mark.parametrize("index", ["0", "12"])
def test_the_index_is_the_last_argument(tmp_path: Path, index: str) -> None:
    argv = payload_argv("m.json", "d", "o", embeddings=False, python=str(_argv_dumper(tmp_path)))
    got = _run(argv, SLURM_ARRAY_TASK_ID=index).stdout.decode().split("\0")[:-1]
    assert got[-2:] == ["--index", index]
