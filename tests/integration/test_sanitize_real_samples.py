"""Real public records, ingested by the real ingestion, then sanitized, indexed and searched; the CLI on top."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import psycopg
import pytest
from sanitize_support import table_writes

from corpusbridge.cli import main
from corpusbridge.index.search import search
from corpusbridge.index.stage import run_index
from corpusbridge.ingest.stage import run_ingest
from corpusbridge.sanitize.stage import run_sanitize

pytestmark = pytest.mark.integration

CORPORA = Path(__file__).resolve().parents[1] / "fixtures" / "corpora"
MARKUP = re.compile(r"</?[A-Za-z][\w:.-]*[\s>/]|&(?:#\d+|#x[0-9a-f]+|[a-z]+);", re.I)


@pytest.fixture
def samples(db: psycopg.Connection, tmp_path: Path) -> psycopg.Connection:
    shutil.copytree(CORPORA, tmp_path / "corpus", ignore=shutil.ignore_patterns("*.md"))
    run_ingest(db, tmp_path / "corpus")
    return db


def _doc(db: psycopg.Connection, doc_id: str) -> dict:
    cur = db.execute("SELECT * FROM clean_documents WHERE doc_id = %s", (doc_id,))
    return dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))


def test_every_raw_document_is_clean_or_rejected_and_no_markup_survives(samples: psycopg.Connection) -> None:
    raw_count = samples.execute("SELECT count(*) FROM raw_documents").fetchone()[0]
    summary = run_sanitize(samples, batch_size=7)
    assert summary.docs_in == raw_count == summary.docs_clean + summary.docs_rejected
    assert samples.execute("SELECT count(*) FROM clean_documents").fetchone()[0] == summary.docs_clean
    assert samples.execute("SELECT count(*) FROM sanitize_rejects").fetchone()[0] == summary.docs_rejected
    for doc_id, *texts in samples.execute("SELECT doc_id, title, abstract, full_text FROM clean_documents"):
        for text in filter(None, texts):
            assert not MARKUP.search(text), f"{doc_id}: markup left in {MARKUP.search(text).group(0)!r}"
            assert "\x00" not in text and text == text.strip()


def test_format_quirks_are_cleaned(samples: psycopg.Connection) -> None:
    run_sanitize(samples)
    nejm = _doc(samples, "doi:10.1056/nejmoa1715274")
    assert [p.split(":")[0] for p in nejm["abstract"].split("\n\n")] == [
        "BACKGROUND",
        "METHODS",
        "RESULTS",
        "CONCLUSIONS",
    ]
    plos = _doc(samples, "doi:10.1371/journal.pone.0000217")
    assert plos["abstract"].startswith("Background: Various definitions of biological complexity")
    elife = _doc(samples, "doi:10.7554/elife.00005")
    assert elife["abstract"].startswith("Polycomb Repressive Complex 2") and "eLife.00005.001" not in elife["abstract"]
    meeting = _doc(samples, "doi:10.1186/cc11003")
    assert meeting["abstract"] is None and len(meeting["full_text"] or "") > 500, "text only in <body> is kept"
    oa = _doc(samples, "doi:10.7717/peerj.4375")
    assert oa["abstract"].startswith("Despite growing interest in Open Access (OA) to scholarly literature")
    reed = _doc(samples, "doi:10.7717/peerj.4188")
    assert reed["title"].startswith("Resistance strategies of Phragmites australis (common reed) to Pb pollution")
    assert all(a["name"] for a in reed["authors"])


def test_rerun_after_unchanged_ingest_writes_nothing(samples: psycopg.Connection, tmp_path: Path) -> None:
    run_sanitize(samples)
    run_index(samples)
    tables = ("clean_documents", "sanitize_rejects", "clean_document_removals", "index_state")
    before = table_writes(samples, *tables)
    run_ingest(samples, tmp_path / "corpus")
    assert (run_sanitize(samples).docs_in, run_index(samples).docs_in) == (0, 0)
    assert table_writes(samples, *tables) == before


def test_search_finds_the_title_phrase_first(samples: psycopg.Connection) -> None:
    run_sanitize(samples)
    run_index(samples)
    assert search(samples, '"mild asthma"')[0].doc_id == "doi:10.1056/nejmoa1715274"
    assert search(samples, "open access prevalence")[0].doc_id == "doi:10.7717/peerj.4375"
    assert search(samples, "Exiguobacterium")[0].doc_id == "doi:10.7717/peerj.3162"


def test_cli_sanitize_index_search_json(samples: psycopg.Connection, db_uri: str, capsys) -> None:
    assert main(["sanitize", "--db", db_uri, "--json"]) == 0
    sanitized = json.loads(capsys.readouterr().out)
    assert sanitized["docs_in"] == sanitized["docs_clean"] + sanitized["docs_rejected"] > 0
    assert main(["index", "--db", db_uri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["docs_indexed"] == sanitized["docs_clean"]
    assert main(["search", "mild asthma", "--db", db_uri, "--limit", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) <= 2 and hits[0]["doc_id"] == "doi:10.1056/nejmoa1715274"
    assert set(hits[0]) == {"doc_id", "title", "year", "score", "snippet"}
    assert main(["search", "mild asthma", "--db", db_uri]) == 0
    assert "1. " in capsys.readouterr().out
    assert main(["sanitize", "--db", db_uri, "--rejects", "5", "--json"]) == 0
    rejects = json.loads(capsys.readouterr().out)["rejects"]
    assert len(rejects) == sanitized["docs_rejected"] and all(r["reason"] == "no_text" for r in rejects)


def test_cli_elasticsearch_without_url_says_what_to_do(db_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELASTICSEARCH_URL", raising=False)
    with pytest.raises(SystemExit, match="ELASTICSEARCH_URL"):
        main(["search", "x", "--db", db_uri, "--backend", "elasticsearch"])


def test_worker_processes_clean_exactly_like_one_process(samples: psycopg.Connection, monkeypatch) -> None:
    from corpusbridge.sanitize import stage
    from corpusbridge.sanitize.records import CleanRecord, sanitize_record

    monkeypatch.setattr(stage, "_PARALLEL_MIN_BATCH", 1)
    summary = run_sanitize(samples, batch_size=16, workers=2)
    in_process = [sanitize_record(raw) for raw in stage._read_batch(samples, 0, summary.to_seq, 10_000)]
    expected = {r.doc_id: r.clean_hash for r in in_process if isinstance(r, CleanRecord)}
    assert dict(samples.execute("SELECT doc_id, clean_hash FROM clean_documents").fetchall()) == expected
