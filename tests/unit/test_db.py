from __future__ import annotations

from corpusbridge.db import apply_migrations, migration_files


def test_migrations_are_numbered_uniquely() -> None:
    versions = [v for v, _, _ in migration_files()]
    assert versions == sorted(set(versions))


def test_migrations_apply_once_then_are_a_no_op(db) -> None:
    assert apply_migrations(db) == []
    tables = {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"raw_documents", "source_files", "quarantine", "ingest_runs"} <= tables


def test_embedded_settings_are_written_and_included_once(tmp_path) -> None:
    from corpusbridge.db import EMBEDDED_SETTINGS, write_embedded_settings

    (tmp_path / "postgresql.conf").write_text("max_connections = 100\n")
    write_embedded_settings(tmp_path)
    write_embedded_settings(tmp_path)
    conf = (tmp_path / "postgresql.conf").read_text()
    assert conf.count("include_if_exists = 'corpusbridge.conf'") == 1
    settings = (tmp_path / "corpusbridge.conf").read_text()
    assert all(f"{name} = '{value}'" in settings for name, value in EMBEDDED_SETTINGS.items())


def test_the_embedded_server_runs_with_the_settings(db) -> None:
    from corpusbridge.db import EMBEDDED_SETTINGS

    if db.execute("SELECT current_setting('config_file') LIKE '%test-pgdata%'").fetchone() != (True,):
        return  # a server chosen by URI is configured by its owner
    assert db.execute("SHOW max_wal_size").fetchone() == (EMBEDDED_SETTINGS["max_wal_size"],)


def test_hints_name_the_database_without_its_password(monkeypatch, tmp_path) -> None:
    """A task log's hint must reach the same database from any directory, and must not carry a password."""
    from corpusbridge.db import cli_command, describe

    monkeypatch.delenv("CORPUSBRIDGE_DB", raising=False)
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "my home"))
    assert describe(None) == f"embedded PostgreSQL in {tmp_path / 'my home' / 'pgdata'}"
    assert cli_command(None, "quarantine") == f"CORPUSBRIDGE_HOME='{tmp_path / 'my home'}' corpusbridge quarantine"
    uri = "postgresql://cb:s3cret@db.example:5433/corpus"
    assert cli_command(uri, "status") == "corpusbridge status --db 'user=cb dbname=corpus host=db.example port=5433'"
    assert "s3cret" not in describe(uri)
