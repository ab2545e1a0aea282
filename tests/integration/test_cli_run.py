"""`corpusbridge run --backend local` on the bundled sample corpora: every hop's counts, then an identical rerun."""

from __future__ import annotations

import json
import socket
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
    with psycopg.connect(db_uri) as conn:
        where = set(conn.execute("SELECT backend, slurm_job, host FROM load_ledger").fetchall())
    assert where == {("local", None, socket.gethostname())}

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

    # --reprocess exports every document again; with the same dictionary and model that is the batch already
    # loaded (batch ids come from the content): its results would be the same, so the run says so and does nothing
    concepts = _concept_rows(db_uri)
    again = _run(capsys, "--db", db_uri, "--no-embeddings", "--dictionary", str(terms), "--reprocess")
    hops = ("docs_exported", "docs_processed", "docs_loaded")
    assert {hop: again[hop] for hop in hops} == dict.fromkeys(hops, 0) and again["job_ids"] == [], again
    assert again["batch_id"] is None and again["reconciled"]
    assert _concept_rows(db_uri) == concepts


def _concept_rows(db_uri: str) -> int:
    with psycopg.connect(db_uri) as conn:
        return conn.execute("SELECT count(*) FROM document_concepts").fetchone()[0]


def _status(capsys: pytest.CaptureFixture[str], db_uri: str) -> dict:
    assert main(["status", "--db", db_uri, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_shard_that_fails_to_compute_fails_the_run_by_name_and_the_rerun_finishes_only_it(
    db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import corpusbridge.compute.local as local
    from corpusbridge.export.manifest import read_manifest, shard_path

    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    real_run_local = local.run_local

    def run_local_with_shard_1_damaged(manifest: Path, *args, **kwargs):
        """The exported shard 1 is damaged while the payload runs (it refuses it: sha256 mismatch), then repaired."""
        shard = shard_path(manifest, read_manifest(manifest).shard(1))
        intact = shard.read_bytes()
        shard.write_bytes(intact[:100] + bytes([intact[100] ^ 0xFF]) + intact[101:])
        try:
            return real_run_local(manifest, *args, **kwargs)
        finally:
            shard.write_bytes(intact)

    monkeypatch.setattr(local, "run_local", run_local_with_shard_1_damaged)
    argv = ["run", "--source", str(CORPORA), "--db", db_uri, "--no-embeddings", "--shard-rows", "10", "--json"]
    assert main(argv) == 1
    failed = json.loads(capsys.readouterr().out)
    assert failed["status"] == "failed" and "compute failed for 1 shard(s) (shard 1: exit 2" in failed["error"]
    assert "the other 3 shard(s) are loaded" in failed["error"] and "run again with the same options" in failed["error"]
    with psycopg.connect(db_uri) as conn:
        assert [r[0] for r in conn.execute("SELECT shard FROM load_ledger ORDER BY shard")] == [0, 2, 3]
        recorded = conn.execute("SELECT error FROM load_runs ORDER BY run_id DESC LIMIT 1").fetchone()[0]
    # The load run's history says why shard 1 has no rows: its compute failed, not a lost result file.
    assert "the compute failed for shard(s) [1]" in recorded and "exit 2" in recorded, recorded
    unfinished = _status(capsys, db_uri)["unfinished_batches"]  # what a person sees before running again
    assert [(b["shards"], b["shards_loaded"]) for b in unfinished] == [(4, 3)], unfinished

    monkeypatch.setattr(local, "run_local", real_run_local)
    again = _run(capsys, *argv[1:-1])
    assert again["shards"] == 4 and again["docs_loaded"] == 10 and again["reconciled"]
    assert again["reconciliation"]["docs_loaded"] == again["reconciliation"]["docs_exported"] > 30
    assert _status(capsys, db_uri)["unfinished_batches"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "/nonexistent/crawl"], "source directory /nonexistent/crawl does not exist"),
        (["--source", str(CORPORA), "--dictionary", "/nonexistent/terms.tsv"], "terms file not found"),
    ],
)
def test_a_mistyped_path_ends_the_run_in_one_line_before_any_stage_runs(
    argv: list[str], message: str, db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    assert main(["run", *argv, "--db", db_uri]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("corpusbridge run: ") and message in err[0], err
    assert "Traceback" not in "\n".join(err) and len(err) == 2, err  # the line and the hint to -v
    with psycopg.connect(db_uri) as conn:  # nothing ran, nothing was recorded as a failed run
        assert conn.execute("SELECT count(*) FROM stage_runs").fetchone()[0] == 0


def test_a_mistyped_path_with_json_prints_an_error_object(
    db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    assert main(["run", "--source", "/nonexistent/crawl", "--db", db_uri, "--json"]) == 1
    assert "does not exist" in json.loads(capsys.readouterr().out)["error"]


def test_verbose_shows_the_traceback(db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["-v", "run", "--source", "/nonexistent/crawl", "--db", db_uri])
