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


def test_payload_argv_in_a_container_binds_the_folders() -> None:
    argv = payload_argv("/s/batch/manifest.json", "/s/dict", "/s/out", embeddings=False, container="/img/cb.sif")
    runtime = argv.index("apptainer")
    assert argv[:4] == ["sh", "-c", argv[2], "sh"] and runtime == 4
    assert argv[runtime : runtime + 9] == ["apptainer", "exec", "--bind", "/s/batch:/s/batch", "--bind",
                                           "/s/dict:/s/dict", "--bind", "/s/out:/s/out", "/img/cb.sif"]  # fmt: skip
    assert argv[runtime + 9 : runtime + 12] == ["python3", "-m", "corpusbridge.extract"]
    assert json.dumps(argv)  # plain strings only


@pytest.mark.parametrize("index", ["0", "12"])
def test_the_index_is_the_last_argument(tmp_path: Path, index: str) -> None:
    argv = payload_argv("m.json", "d", "o", embeddings=False, python=str(_argv_dumper(tmp_path)))
    got = _run(argv, SLURM_ARRAY_TASK_ID=index).stdout.decode().split("\0")[:-1]
    assert got[-2:] == ["--index", index]
