from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corpusbridge.hpc import script


def run_script(tmp_path: Path, command, index: str = "2") -> subprocess.CompletedProcess[str]:
    text = script.batch_script(command, str(tmp_path), job_name="cb-test")
    path = tmp_path / "job.sh"
    path.write_text(text)
    return subprocess.run(
        ["bash", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": index},
        check=False,
    )


def test_argv_command_keeps_hostile_values_literal(tmp_path: Path) -> None:
    done = run_script(tmp_path, ["printf", "%s|", "a; touch pwned", "$(touch pwned2)", "it's"])
    assert done.stdout == "a; touch pwned|$(touch pwned2)|it's|"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_success_leaves_a_marker_for_that_index(tmp_path: Path) -> None:
    done = run_script(tmp_path, 'echo "index $SLURM_ARRAY_TASK_ID in $PWD"')
    assert done.returncode == 0 and done.stdout.strip() == f"index 2 in {tmp_path}"
    assert (tmp_path / script.MARKER_DIR / "2").exists()


def test_top_level_exit_still_reports_and_leaves_no_marker(tmp_path: Path) -> None:
    done = run_script(tmp_path, "echo before; exit 3")
    assert done.returncode == 3 and done.stdout == "before\n"
    assert not (tmp_path / script.MARKER_DIR / "2").exists()


def test_scratch_with_odd_characters(tmp_path: Path) -> None:
    odd = tmp_path / "it's a $dir"
    odd.mkdir()
    done = run_script(odd, ["pwd"])
    assert done.stdout.strip() == str(odd)


def test_container_prefix_binds_scratch() -> None:
    line = script.command_line(["python", "-m", "x"], "/s", script.Container("/img/a b.sif"))
    assert line == "apptainer exec --bind /s:/s --pwd /s '/img/a b.sif' python -m x"
    shell = script.command_line("echo $X", "/s", script.Container("i.sif", runtime="singularity"))
    assert shell == "singularity exec --bind /s:/s --pwd /s i.sif /bin/bash -c 'echo $X'"


def test_a_gpu_container_brings_the_nvidia_driver_in() -> None:
    line = script.command_line(["python", "-m", "x"], "/s", script.Container("i.sif", gpu=True))
    assert line == "apptainer exec --nv --bind /s:/s --pwd /s i.sif python -m x"


def test_container_runtime_must_be_a_program() -> None:
    with pytest.raises(ValueError, match="runtime"):
        script.command_line(["x"], "/s", script.Container("i", runtime="apptainer; reboot"))


def test_empty_command_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        script.command_line([], "/s")


def test_log_paths_match_what_sbatch_expands() -> None:
    assert script.log_paths("/s", array=True) == ("/s/.corpusbridge/logs/%A_%a.out", "/s/.corpusbridge/logs/%A_%a.err")
    assert script.log_file("/s", "8", 2, "err") == "/s/.corpusbridge/logs/8_2.err"
    assert script.log_paths("/s", array=False)[0] == "/s/.corpusbridge/logs/%j.out"
    assert script.log_file("/s", "9", None, "out") == "/s/.corpusbridge/logs/9.out"


def test_sbatch_directives_in_a_command_are_never_read() -> None:
    """sbatch reads `#SBATCH` lines only up to the first command; the generated lines before the user's command
    hold one (`cd`), so `#SBATCH --job-name=evil` in a command string is a plain comment."""
    text = script.batch_script("#SBATCH --job-name=evil\n#SBATCH -o /tmp/x\ntrue", "/s", job_name="cb-x")
    lines = text.splitlines()
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    assert all("evil" not in line and "-o /tmp" not in line for line in lines[:first_command])
    assert not any(line.startswith("#SBATCH") for line in lines[:first_command])


def test_a_percent_in_scratch_is_escaped_for_sbatch_and_a_backslash_refused() -> None:
    assert script.log_paths("/s/50%", array=False) == (
        "/s/50%%/.corpusbridge/logs/%j.out",
        "/s/50%%/.corpusbridge/logs/%j.err",
    )
    assert script.log_file("/s/50%", "9", None, "out") == "/s/50%/.corpusbridge/logs/9.out"
    with pytest.raises(ValueError, match="backslash"):
        script.log_paths("/s/a\\b", array=True)


def _fake_runtime(folder: Path, name: str) -> Path:
    """A test double for apptainer/singularity (none is installed here): prints the digest variables it was given."""
    runtime = folder / name
    runtime.write_text("#!/bin/sh\nenv | grep CORPUSBRIDGE_IMAGE_DIGEST | sort\n", encoding="utf-8")
    runtime.chmod(0o755)
    return runtime


def _run_in_container(tmp_path: Path, container: script.Container) -> subprocess.CompletedProcess[str]:
    job = tmp_path / "job.sh"
    job.write_text(script.batch_script(["true"], str(tmp_path), job_name="cb-img", container=container))
    env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "0"}
    return subprocess.run(["bash", str(job)], capture_output=True, text=True, env=env, check=False)


def test_the_job_hands_the_images_digest_from_its_sidecar_into_the_container(tmp_path: Path) -> None:
    image = tmp_path / "cb image.sqfs"
    image.write_bytes(b"squashfs bytes")
    (tmp_path / "cb image.sqfs.sha256").write_text(f"{'ab' * 32}  cb image.sqfs\n")
    done = _run_in_container(tmp_path, script.Container(str(image), str(_fake_runtime(tmp_path, "apptainer"))))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"APPTAINERENV_CORPUSBRIDGE_IMAGE_DIGEST=sha256:{'ab' * 32}"]
    assert done.stderr == ""


def test_without_a_current_sidecar_the_job_hashes_the_image(tmp_path: Path) -> None:
    import hashlib
    import os

    image = tmp_path / "cb.sqfs"
    image.write_bytes(b"squashfs bytes")
    sidecar = tmp_path / "cb.sqfs.sha256"
    sidecar.write_text(f"{'ab' * 32}  cb.sqfs\n")
    os.utime(sidecar, (1, 1))  # older than the image: the image was replaced after the sidecar was written
    singularity = script.Container(str(image), str(_fake_runtime(tmp_path, "singularity")))
    done = _run_in_container(tmp_path, singularity)
    expected = hashlib.sha256(b"squashfs bytes").hexdigest()
    assert done.stdout.splitlines() == [f"SINGULARITYENV_CORPUSBRIDGE_IMAGE_DIGEST=sha256:{expected}"]
    assert "no current" in done.stderr and "hashing the image" in done.stderr
