"""One contract, two transports: whatever the SLURM layer and staging rely on must hold for the local transport
and for OpenSSH against the real loopback sshd alike."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpusbridge.hpc.local import LocalTransport
from corpusbridge.hpc.transport import Transport, TransportError, TransportTimeout

ODD_NAMES = [
    "plain.parquet",
    "with space.txt",
    "it's.txt",
    'double"quote.txt',
    "ünïcødé-名前.txt",
    "semi;colon $HOME `id` $(id).txt",
    "-leading-dash.txt",
    "star*and?[ab].txt",
    "tab\tand\nnewline.txt",
]


@dataclass
class Remote:
    transport: Transport
    scratch: str

    def path(self, *parts: str) -> str:
        return "/".join([self.scratch, *parts])


@pytest.fixture(
    params=["local", pytest.param("openssh", marks=[pytest.mark.integration, pytest.mark.slurm])],
)
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    if request.param == "local":
        yield Remote(LocalTransport(tmp_path / "home"), str(tmp_path / "scratch"))
        return
    sandbox = request.getfixturevalue("hpc_sandbox")
    transport = request.getfixturevalue("openssh_transport")
    scratch = f"{sandbox.scratch_root}/contract/{uuid.uuid4().hex[:10]}"
    yield Remote(transport, scratch)
    transport.run(["rm", "-rf", "--", scratch])


def test_is_a_transport(remote: Remote) -> None:
    assert isinstance(remote.transport, Transport)


def test_run_returns_output_and_exit_status(remote: Remote) -> None:
    result = remote.transport.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (result.returncode, result.stdout, result.stderr, result.ok) == (3, "out\n", "err\n", False)
    assert result.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")


def test_run_passes_stdin(remote: Remote) -> None:
    assert remote.transport.run(["cat"], stdin=b"line 1\nline 2\n").stdout == "line 1\nline 2\n"


def test_unknown_program_is_a_result_not_an_error(remote: Remote) -> None:
    result = remote.transport.run(["corpusbridge-no-such-program", "x"])
    assert result.returncode == 127


@pytest.mark.parametrize(
    "hostile",
    [
        "; rm -rf /tmp/x",
        "$(touch {canary})",
        "`touch {canary}`",
        "'; touch {canary}; '",
        "a\nb && touch {canary}",
        "| touch {canary}",
    ],
)
def test_hostile_argument_arrives_literally(remote: Remote, hostile: str) -> None:
    canary = remote.path("canary")
    remote.transport.makedirs(remote.scratch)
    argument = hostile.format(canary=canary)
    result = remote.transport.run(["printf", "%s", argument])
    assert result.stdout == argument
    assert remote.transport.stat(canary) is None


@pytest.mark.parametrize("name", ODD_NAMES)
def test_put_get_roundtrip_with_odd_names(remote: Remote, tmp_path: Path, name: str) -> None:
    data = f"payload for {name}\n".encode() * 1000
    source = tmp_path / "out" / name
    source.parent.mkdir()
    source.write_bytes(data)
    target = remote.path("deep", "er", name)
    remote.transport.put(source, target)
    assert remote.transport.sha256(target) == hashlib.sha256(data).hexdigest()
    stat = remote.transport.stat(target)
    assert stat is not None and (stat.size, stat.is_dir) == (len(data), False)
    assert remote.transport.glob(remote.path("deep", "er", "*")) == [target]
    back = tmp_path / "back" / name
    remote.transport.get(target, back)
    assert back.read_bytes() == data


def test_put_replaces_an_existing_file(remote: Remote, tmp_path: Path) -> None:
    target = remote.path("f.bin")
    for content in (b"first version, longer", b"second"):
        (tmp_path / "f.bin").write_bytes(content)
        remote.transport.put(tmp_path / "f.bin", target)
    assert remote.transport.sha256(target) == hashlib.sha256(b"second").hexdigest()
    assert remote.transport.glob(remote.path("*")) == [target]


def test_empty_file_roundtrip(remote: Remote, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    remote.transport.put(tmp_path / "empty", remote.path("empty"))
    remote.transport.get(remote.path("empty"), tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == b""
    assert remote.transport.sha256(remote.path("empty")) == hashlib.sha256(b"").hexdigest()


def test_missing_paths(remote: Remote, tmp_path: Path) -> None:
    missing = remote.path("no", "such file")
    assert remote.transport.stat(missing) is None
    assert remote.transport.sha256(missing) is None
    assert remote.transport.glob(remote.path("no", "*")) == []
    with pytest.raises(FileNotFoundError, match="no such file"):
        remote.transport.get(missing, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_makedirs_and_stat_of_a_folder(remote: Remote) -> None:
    folder = remote.path("a b", "c'd", "e")
    remote.transport.makedirs(folder)
    remote.transport.makedirs(folder)
    stat = remote.transport.stat(folder)
    assert stat is not None and stat.is_dir
    assert remote.transport.sha256(folder) is None
    assert stat.mtime == pytest.approx(time.time(), abs=120)


def test_glob_matches_like_a_shell_and_never_executes(remote: Remote, tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"x")
    names = ["a.parquet", "b.parquet", "sp ace.parquet", "c.txt", ".hidden.parquet", "q'uote.parquet"]
    for name in names:
        remote.transport.put(tmp_path / "x", remote.path("out", name))
    got = remote.transport.glob(remote.path("out", "*.parquet"))
    assert got == sorted(remote.path("out", n) for n in ["a.parquet", "b.parquet", "sp ace.parquet", "q'uote.parquet"])
    assert remote.transport.glob(remote.path("out", "[ab].parquet")) == [
        remote.path("out", "a.parquet"),
        remote.path("out", "b.parquet"),
    ]
    assert remote.transport.glob(remote.path("out", "?.txt")) == [remote.path("out", "c.txt")]
    canary = remote.path("canary")
    hostile = remote.path("out", f"*'; touch {canary}; echo '*")
    assert remote.transport.glob(hostile) == []
    assert remote.transport.glob(remote.path("out", f"$(touch {canary})*")) == []
    assert remote.transport.stat(canary) is None


def test_timeout_raises_a_transport_timeout(remote: Remote) -> None:
    started = time.monotonic()
    with pytest.raises(TransportTimeout):
        remote.transport.run(["sleep", "30"], timeout=1.0)
    assert time.monotonic() - started < 10
    assert issubclass(TransportTimeout, TransportError)


def test_put_many_uploads_in_one_go_with_remote_hashes(remote: Remote, tmp_path: Path) -> None:
    from corpusbridge.hpc.transport import BulkUpload

    assert isinstance(remote.transport, BulkUpload)
    items = []
    for i, name in enumerate(ODD_NAMES):
        source = tmp_path / f"src{i}"
        source.write_bytes(name.encode() * (i + 1) * 999)
        items.append((source, remote.path("bulk", "sub" if i % 2 else "", name).replace("//", "/")))
    hashes = remote.transport.put_many(items)
    assert hashes == [hashlib.sha256(src.read_bytes()).hexdigest() for src, _ in items]
    assert sorted(remote.transport.glob(remote.path("bulk", "*"))) == sorted(
        [t for _, t in items if "/sub/" not in t] + [remote.path("bulk", "sub")]
    )
    assert remote.transport.put_many([]) == []


def test_get_many_downloads_in_one_go(remote: Remote, tmp_path: Path) -> None:
    from corpusbridge.hpc.transport import BulkDownload

    assert isinstance(remote.transport, BulkDownload)
    sources = []
    for i, name in enumerate(ODD_NAMES):
        (tmp_path / f"src{i}").write_bytes(name.encode() * (i + 1) * 777)
        sources.append((tmp_path / f"src{i}", remote.path("many", name)))
    remote.transport.put_many(sources)
    items = [(target, tmp_path / "back" / f"copy {i}") for i, (_, target) in enumerate(sources)]
    remote.transport.get_many(items)
    assert all((tmp_path / "back" / f"copy {i}").read_bytes() == src.read_bytes() for i, (src, _) in enumerate(sources))
    with pytest.raises(OSError):
        remote.transport.get_many([(remote.path("many", "no such file"), tmp_path / "never")])
    assert not (tmp_path / "never").exists()


def test_put_many_fails_loudly_when_a_target_cannot_be_written(remote: Remote, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    remote.transport.put(tmp_path / "f", remote.path("a-file"))
    with pytest.raises(OSError):
        remote.transport.put_many([(tmp_path / "f", remote.path("ok")), (tmp_path / "f", remote.path("a-file", "x"))])


def test_relative_paths_start_in_the_login_directory(remote: Remote, tmp_path: Path) -> None:
    folder = f"cb-contract-{uuid.uuid4().hex[:8]}"
    (tmp_path / "f").write_bytes(b"rel")
    try:
        remote.transport.put(tmp_path / "f", f"{folder}/a b.txt")
        assert remote.transport.glob(f"{folder}/*.txt") == [f"{folder}/a b.txt"]
        assert remote.transport.sha256(f"{folder}/a b.txt") == hashlib.sha256(b"rel").hexdigest()
        assert remote.transport.run(["cat", f"{folder}/a b.txt"]).stdout == "rel"
    finally:
        remote.transport.run(["rm", "-rf", "--", folder])
