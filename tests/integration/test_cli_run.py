"""`corpusbridge run --backend local` on the bundled sample corpora: every hop's counts, then an identical rerun."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from corpusbridge.cli import main

pytestmark = pytest.mark.integration

CORPORA = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"
HOPS = ("docs_ingested", "docs_sanitized", "docs_indexed", "docs_exported", "docs_processed", "docs_loaded")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main(["run", *argv, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    return out


def test_run_local_twice_loads_everything_once_then_does_nothing(
    db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    first = _run(capsys, "--backend", "local", "--source", str(CORPORA), "--db", db_uri, "--shard-rows", "10")
    assert first["docs_exported"] == first["docs_processed"] == first["docs_loaded"] > 10
    assert first["docs_ingested"] >= first["docs_sanitized"] >= first["docs_exported"]
    assert first["shards"] > 1 and first["job_ids"] == [] and first["reconciled"]
    assert first["reconciliation"]["ok"] and first["reconciliation"]["docs_loaded"] == first["docs_loaded"]
    assert first["concepts_loaded"] > 0 and first["vectors_loaded"] == first["docs_loaded"]

    again = _run(capsys, "--backend", "local", "--source", str(CORPORA), "--db", db_uri, "--shard-rows", "10")
    assert {hop: again[hop] for hop in HOPS} == dict.fromkeys(HOPS, 0)
    assert (again["batch_id"], again["job_ids"], again["concepts_loaded"]) == (None, [], 0)

    status = _status(capsys, db_uri)
    assert status["stages"]["load"]["runs"] == {"succeeded": 1} and status["last_reconciliation"]["ok"]


def test_a_new_dictionary_reprocesses_concepts_only_without_new_vectors(
    db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    first = _run(capsys, "--source", str(CORPORA), "--db", db_uri, "--no-embeddings")
    terms = tmp_path / "terms.tsv"
    terms.write_text("concept_id\tterm\nx:species\tspecies\nx:protein\tprotein\n", encoding="utf-8")
    second = _run(capsys, "--db", db_uri, "--no-embeddings", "--dictionary", str(terms))
    assert second["docs_exported"] == second["docs_loaded"] == first["docs_loaded"]
    assert second["dictionary_version"] != first["dictionary_version"]
    with psycopg.connect(db_uri) as conn:
        ids = {r[0] for r in conn.execute("SELECT DISTINCT concept_id FROM document_concepts")}
        per_doc = conn.execute(
            "SELECT count(*) FROM (SELECT doc_id, start_offset, concept_id, count(*) FROM document_concepts "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
        ).fetchone()[0]
    assert ids == {"x:species", "x:protein"} and per_doc == 0


def _status(capsys: pytest.CaptureFixture[str], db_uri: str) -> dict:
    assert main(["status", "--db", db_uri, "--json"]) == 0
    return json.loads(capsys.readouterr().out)
