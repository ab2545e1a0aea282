"""PostgreSQL full-text index and search on a small known corpus: ranking, phrases, duplicates, incrementality."""

from __future__ import annotations

import psycopg
import pytest
from sanitize_support import put_raw, raw_row, table_writes

from corpusbridge.index.search import search
from corpusbridge.index.stage import run_index
from corpusbridge.sanitize.stage import run_sanitize

pytestmark = pytest.mark.integration

FILLER = "Patients were followed for fifty two weeks in a randomized double blind multicentre trial."
CORPUS = [
    # The phrase only in the title.
    raw_row(
        "title-hit",
        title="Climate change and wildfire occurrence in Brazilian biomes",
        year=2019,
        abstract="We relate fire counts to temperature and rainfall anomalies across six biomes. " + FILLER,
    ),
    # The phrase many times, but only in the abstract.
    raw_row(
        "abstract-hit",
        title="Regional drought indicators",
        year=2020,
        abstract="Climate change drives drought; climate change drives heat; climate change drives fire "
        "weather. Wildfire occurrence follows climate change. " + FILLER,
    ),
    raw_row(
        "words-apart",
        title="Change of wildfire policy",
        year=2015,
        abstract="The climate of the debate and the occurrence of reforms. " + FILLER,
    ),
    raw_row(
        "asthma",
        title="As-needed budesonide-formoterol in mild asthma",
        year=2018,
        abstract='<AbstractText Label="BACKGROUND">In mild asthma, as-needed therapy.</AbstractText> ' + FILLER,
    ),
    raw_row(
        "asthma-copy",
        title="As-needed budesonide-formoterol in mild asthma",
        year=2018,
        abstract="BACKGROUND: In mild asthma, as-needed therapy. " + FILLER,
        source_format="medline",
    ),
    raw_row(
        "authors", title="Soil microbes", abstract="Alpine lakes. " + FILLER, authors=[{"name": "Vincent Larivière"}]
    ),
]


@pytest.fixture
def indexed(db: psycopg.Connection) -> psycopg.Connection:
    put_raw(db, *CORPUS)
    run_sanitize(db)
    run_index(db)
    return db


def _ids(db: psycopg.Connection, query: str, limit: int = 10) -> list[str]:
    return [h.doc_id for h in search(db, query, limit=limit)]


def test_the_document_whose_title_holds_the_phrase_ranks_first(indexed: psycopg.Connection) -> None:
    assert _ids(indexed, '"climate change" wildfire occurrence')[:2] == ["title-hit", "abstract-hit"]
    assert _ids(indexed, "climate change wildfire")[0] == "title-hit"


def test_phrase_search_excludes_documents_with_the_words_apart(indexed: psycopg.Connection) -> None:
    assert "words-apart" not in _ids(indexed, '"climate change"')
    assert "words-apart" in _ids(indexed, "climate change")


def test_exclusion_and_or(indexed: psycopg.Connection) -> None:
    assert _ids(indexed, "wildfire -drought") == ["title-hit", "words-apart"]
    assert set(_ids(indexed, "asthma or microbes")) == {"asthma", "authors"}


def test_duplicates_are_hidden_and_hits_carry_title_year_score_snippet(indexed: psycopg.Connection) -> None:
    hits = search(indexed, "mild asthma")
    assert [h.doc_id for h in hits] == ["asthma"], "the exact duplicate links to its canonical and is not listed"
    hit = hits[0]
    assert (hit.title, hit.year) == ("As-needed budesonide-formoterol in mild asthma", 2018)
    assert hit.score > 1 and "**mild** **asthma**" in hit.snippet.lower()


def test_author_names_are_searchable(indexed: psycopg.Connection) -> None:
    assert _ids(indexed, "Larivière") == ["authors"]


def test_limit_and_empty_query(indexed: psycopg.Connection) -> None:
    assert len(_ids(indexed, "trial", limit=2)) == 2
    with pytest.raises(ValueError, match="query is empty"):
        search(indexed, "   ")


def test_index_rerun_without_changes_writes_nothing_and_changes_are_picked_up(indexed: psycopg.Connection) -> None:
    before = table_writes(indexed, "clean_documents", "index_state")
    assert before > 0
    summary = run_index(indexed)
    assert (summary.docs_in, summary.rows_written) == (0, 0)
    assert table_writes(indexed, "clean_documents", "index_state") == before
    put_raw(
        indexed,
        raw_row(
            "authors",
            title="Soil microbes and wildfire",
            abstract="Alpine lakes. " + FILLER,
            authors=[{"name": "Vincent Larivière"}],
        ),
    )
    run_sanitize(indexed)
    summary = run_index(indexed)
    assert (summary.docs_in, summary.docs_indexed) == (1, 1)
    assert _ids(indexed, "wildfire")[0] in {"title-hit", "authors"} and "authors" in _ids(indexed, "wildfire")


def test_rejected_document_leaves_search(indexed: psycopg.Connection) -> None:
    put_raw(indexed, raw_row("authors", title="", abstract=""))
    run_sanitize(indexed)
    summary = run_index(indexed)
    assert (summary.docs_in, summary.docs_deleted) == (1, 1)
    assert _ids(indexed, "Larivière") == []


def test_rebuild_rewrites_every_vector(indexed: psycopg.Connection) -> None:
    summary = run_index(indexed, rebuild=True)
    assert summary.mode == "rebuild" and summary.rows_written == summary.docs_in == 6
    assert _ids(indexed, "climate change wildfire")[0] == "title-hit"


def test_one_index_run_at_a_time_and_every_run_is_in_the_run_log(indexed: psycopg.Connection, db_uri: str) -> None:
    from corpusbridge.runs import Stage, StageBusy, stage_lock

    with psycopg.connect(db_uri) as other, stage_lock(other, Stage.INDEX), pytest.raises(StageBusy, match="index run"):
        run_index(indexed)
    runs = indexed.execute("SELECT stage, status, counts->>'backend', code_version IS NOT NULL FROM stage_runs")
    assert [r for r in runs if r[0] == "index"] == [("index", "succeeded", "postgres", True)]
