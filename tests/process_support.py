"""Watching real processes and database sessions in the kill tests: who is a child, who still runs, who is connected."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (read from /proc, so nothing needs to cooperate)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphaned zombie waits for a reaper but holds no socket or lock any more)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll `condition` up to a generous deadline; fail naming `what` did not happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (waited {seconds:.0f} s)")
        time.sleep(0.1)


def other_sessions(db_uri: str) -> int:
    """Client sessions on this database other than the one asking."""
    with psycopg.connect(db_uri, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        ).fetchone()
    return int(row[0]) if row else 0


def fresh_database(server_uri: str) -> str:
    """A new empty database on the test server (unmigrated): where 'one clean run' is replayed for comparison."""
    import uuid

    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"clean_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_uri, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(**(conninfo_to_dict(server_uri) | {"dbname": name}))
