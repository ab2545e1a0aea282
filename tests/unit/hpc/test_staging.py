"""Staging against both transports (local, and OpenSSH to the loopback sandbox): files land under their base
names, are verified by sha256 on both sides, a rerun skips what is intact, and damage is found and repaired."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corpusbridge.hpc import staging
from corpusbridge.hpc.local import LocalTransport
from corpusbridge.hpc.staging import StagingError, fetch, stage_in
from corpusbridge.hpc.transport import Transport

NAMES = ["shard-00000.parquet", "sp ace 'quote\".parquet", "ünï;$(id).parquet"]


@dataclass
class Remote:
    transport: Transport
    scratch: str


@pytest.fixture(
    params=["local", pytest.param("openssh", marks=[pytest.mark.integration, pytest.mark.slurm])],
)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    if request.param == "local":
        yield Remote(LocalTransport(tmp_path / "home"), str(tmp_path / "scratch" / "run 1"))
        return
    sandbox = request.getfixturevalue("hpc_sandbox")
    transport = request.getfixturevalue("openssh_transport")
    scratch = f"{sandbox.scratch_root}/staging/{uuid.uuid4().hex[:10]}/run 1"
    yield Remote(transport, scratch)
    transport.run(["rm", "-rf", "--", scratch.rsplit("/", 1)[0]])


class FlakyUploadDouble:
    """A real transport whose next `bad_puts` uploads deliver damaged bytes (a flaky link or a full disk)."""

    def __init__(self, inner: Transport, tmp: Path, bad_puts: int) -> None:
        self.inner, self.tmp, self.bad_puts = inner, tmp, bad_puts
        self.name = inner.name

    def _maybe_damaged(self, local: Path) -> Path:
        if self.bad_puts <= 0:
            return local
        self.bad_puts -= 1
        damaged = self.tmp / f"damaged-{self.bad_puts}"
        data = bytearray(local.read_bytes())
        data[len(data) // 2] ^= 0xFF
        damaged.write_bytes(bytes(data))
        return damaged

    def put(self, local: Path, remote: str) -> None:
        self.inner.put(self._maybe_damaged(local), remote)

    def put_many(self, items: list[tuple[Path, str]]) -> list[str]:
        return self.inner.put_many([(self._maybe_damaged(local), remote) for local, remote in items])  # type: ignore

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    (folder / "dict" / "sub").mkdir(parents=True)
    files = []
    for i, name in enumerate(NAMES):
        (folder / name).write_bytes(bytes([i]) * (50_000 + i))
        files.append(folder / name)
    (folder / "dict" / "terms.tsv").write_text("a\tb\n")
    (folder / "dict" / "sub" / "more.tsv").write_text("c\td\n")
    return [*files, folder / "dict"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_stage_in_lands_files_under_their_base_names(
    remote: Remote, inputs: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="corpusbridge.hpc.staging"):
        result = stage_in(remote.transport, inputs, remote.scratch)
    expected = sorted([*NAMES, "dict/terms.tsv", "dict/sub/more.tsv"])
    assert sorted(f.target.removeprefix(remote.scratch + "/") for f in result.files) == expected
    assert (result.skipped, result.repaired, len(result.files)) == (0, 0, 5)
    assert result.bytes == sum(p.stat().st_size for p in inputs[:3]) + 8
    for f in result.files:
        assert remote.transport.sha256(f.target) == _sha(Path(f.source)) == f.sha256
    assert "MB/s" in caplog.text


def test_rerun_skips_intact_files_and_moves_nothing(remote: Remote, inputs: list[Path]) -> None:
    stage_in(remote.transport, inputs, remote.scratch)
    again = stage_in(remote.transport, inputs, remote.scratch)
    assert (again.skipped, again.bytes, again.repaired) == (5, 0, 0)


def test_damaged_remote_file_is_detected_and_repaired(remote: Remote, inputs: list[Path], tmp_path: Path) -> None:
    stage_in(remote.transport, inputs, remote.scratch)
    victim, truncated = f"{remote.scratch}/{NAMES[1]}", f"{remote.scratch}/{NAMES[2]}"
    same_size = tmp_path / "same-size"
    same_size.write_bytes(b"\xff" * (50_001))
    remote.transport.put(same_size, victim)
    (tmp_path / "short").write_bytes(b"x")
    remote.transport.put(tmp_path / "short", truncated)

    result = stage_in(remote.transport, inputs, remote.scratch)
    actions = {Path(f.source).name: f.action for f in result.files}
    assert actions[NAMES[1]] == "repaired"
    assert actions[NAMES[2]] in {"repaired", "copied"}
    assert result.skipped == 3
    assert remote.transport.sha256(victim) == _sha(inputs[1])
    assert remote.transport.sha256(truncated) == _sha(inputs[2])


def test_corrupted_upload_is_detected_and_uploaded_again(remote: Remote, inputs: list[Path], tmp_path: Path) -> None:
    flaky = FlakyUploadDouble(remote.transport, tmp_path, bad_puts=1)
    result = stage_in(flaky, inputs[:1], remote.scratch)  # type: ignore[arg-type]
    assert [f.action for f in result.files] == ["repaired"]
    assert remote.transport.sha256(f"{remote.scratch}/{NAMES[0]}") == _sha(inputs[0])


def test_persistent_corruption_fails_naming_the_file(remote: Remote, inputs: list[Path], tmp_path: Path) -> None:
    flaky = FlakyUploadDouble(remote.transport, tmp_path, bad_puts=2)
    with pytest.raises(StagingError, match=r"shard-00000.parquet: sha256 mismatch after upload .* re-run to resume"):
        stage_in(flaky, inputs[:1], remote.scratch)  # type: ignore[arg-type]


def test_bad_inputs_are_refused_before_anything_moves(remote: Remote, tmp_path: Path, inputs: list[Path]) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet does not exist"):
        stage_in(remote.transport, [tmp_path / "nope.parquet"], remote.scratch)
    twin = tmp_path / "other" / NAMES[0]
    twin.parent.mkdir()
    twin.write_bytes(b"x")
    with pytest.raises(StagingError, match="would both land on"):
        stage_in(remote.transport, [inputs[0], twin], remote.scratch)
    assert remote.transport.stat(remote.scratch) is None


def test_fetch_by_glob_verifies_and_resumes(remote: Remote, inputs: list[Path], tmp_path: Path) -> None:
    stage_in(remote.transport, inputs, remote.scratch)
    out = tmp_path / "out"
    result = fetch(remote.transport, [f"{remote.scratch}/*.parquet", f"{remote.scratch}/dict/*.tsv"], out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*NAMES, "terms.tsv"])
    assert all(_sha(out / n) == _sha(inputs[0].parent / n) for n in NAMES)
    assert (result.skipped, result.bytes) == (0, sum(p.stat().st_size for p in inputs[:3]) + 4)

    (out / NAMES[1]).write_bytes(b"\x00" * 50_001)
    again = fetch(remote.transport, [f"{remote.scratch}/*.parquet"], out)
    assert {Path(f.target).name: f.action for f in again.files} == {
        NAMES[0]: "skipped",
        NAMES[1]: "repaired",
        NAMES[2]: "skipped",
    }
    assert _sha(out / NAMES[1]) == _sha(inputs[1])


def test_fetch_refuses_missing_outputs_and_folders(remote: Remote, inputs: list[Path], tmp_path: Path) -> None:
    stage_in(remote.transport, inputs, remote.scratch)
    with pytest.raises(StagingError, match=r"nothing on the cluster matches .*\*.csv"):
        fetch(remote.transport, [f"{remote.scratch}/*.csv"], tmp_path / "o")
    assert fetch(remote.transport, [f"{remote.scratch}/*.csv"], tmp_path / "o", require_match=False).files == ()
    with pytest.raises(StagingError, match="not a regular file"):
        fetch(remote.transport, [f"{remote.scratch}/dic?"], tmp_path / "o")


@pytest.mark.parametrize("pattern", ["../x", "/etc/hostname", "a/../../x", "/s/run/../other/x", ".."])
def test_patterns_outside_scratch_are_refused_before_the_cluster_is_asked(pattern: str) -> None:
    with pytest.raises(staging.ScratchEscapeError, match="outside the run's scratch folder /s/run"):
        staging.confine_patterns([pattern], "/s/run/")


def test_patterns_inside_scratch_are_joined_onto_it() -> None:
    assert staging.confine_patterns(["out/*.txt", "/s/run/a"], "/s/run") == ["/s/run/out/*.txt", "/s/run/a"]


def test_a_fifo_in_a_stage_in_folder_is_refused(tmp_path: Path) -> None:
    import os

    (tmp_path / "in").mkdir()
    os.mkfifo(tmp_path / "in" / "pipe")
    with pytest.raises(staging.StagingError, match="not a regular file"):
        staging.plan_stage_in([tmp_path / "in"], "/s")
