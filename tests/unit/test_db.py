from __future__ import annotations

from corpusbridge.db import apply_migrations, migration_files


def test_migrations_are_numbered_uniquely() -> None:
    versions = [v for v, _, _ in migration_files()]
    assert versions == sorted(set(versions))


def test_migrations_apply_once_then_are_a_no_op(db) -> None:
    assert apply_migrations(db) == []
    tables = {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"raw_documents", "source_files", "quarantine", "ingest_runs"} <= tables
