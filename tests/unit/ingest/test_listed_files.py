"""Issue 13 items 3-4: a listed path is opened only if it is still the regular file that was listed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from corpusbridge.ingest.discover import fs_path, listed_name, walk_files
from corpusbridge.ingest.reader import FileRefused, open_listed

pytestmark = pytest.mark.faults


def _refusal(path: Path, **expected: int) -> str:
    with pytest.raises(FileRefused) as caught:
        fd, _ = open_listed(str(path), **expected)
        os.close(fd)
    return caught.value.error_class


def test_symlink_fifo_socket_and_missing_file_are_refused_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    os.mkfifo(tmp_path / "fifo")  # no writer: a blocking open would hang here
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        assert _refusal(tmp_path / "sock") == "NotRegularFile"
    assert _refusal(tmp_path / "link") == "NotRegularFile"
    assert _refusal(tmp_path / "fifo") == "NotRegularFile"
    assert _refusal(tmp_path / "gone") == "FileVanished"


def test_a_file_changed_since_listing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("{}\n")
    st = path.stat()
    assert _refusal(path, size=st.st_size + 1, mtime_ns=st.st_mtime_ns) == "ChangedSinceListing"
    fd, found = open_listed(str(path), size=st.st_size, mtime_ns=st.st_mtime_ns)
    os.close(fd)
    assert (found.dev, found.ino) == (st.st_dev, st.st_ino)


def test_an_unreadable_file_is_refused_as_unreadable(tmp_path: Path) -> None:
    """A real EACCES: root reads everything, so the open runs as a second user (nobody) when we are root."""
    path = tmp_path / "private.jsonl"
    path.write_text("{}\n")
    path.chmod(0)
    if os.geteuid() != 0:
        assert _refusal(path) == "Unreadable"
        return
    if shutil.which("runuser") is None:
        pytest.skip("as root an EACCES needs runuser to act as nobody")
    tmp_path.chmod(0o755)
    tmp_path.parent.chmod(0o755)
    code = (
        "import sys; from corpusbridge.ingest.reader import FileRefused, open_listed\n"
        "try: open_listed(sys.argv[1])\nexcept FileRefused as e: print(e.error_class)"
    )
    done = subprocess.run(
        ["runuser", "-u", "nobody", "--", _system_python(), "-c", code, str(path)],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[3] / "include"), "PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert done.stdout.strip() == "Unreadable", done.stderr


def test_non_utf8_names_are_listed_escaped_and_map_back(tmp_path: Path) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9 \\x41.jsonl")
    with open(raw, "wb") as f:
        f.write(b"{}\n")
    (found,) = list(walk_files(tmp_path))
    assert found.path.startswith("non-utf8:") and found.path.encode("utf-8")
    assert fs_path(found.path) == raw
    assert listed_name(str(tmp_path / "plain.jsonl")) == str(tmp_path / "plain.jsonl")


def _system_python() -> str:
    """A python that nobody may run (the venv's links into root's home); the reader needs only the stdlib."""
    found = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if found is None:
        pytest.skip("no system python3 for the second user")
    return found
