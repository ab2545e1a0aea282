"""What a person asks of the loaded results: a document's nearest neighbours by vector, and its concepts in context."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from corpusbridge.load import statements

# The exported text of a clean document, as export/statements.py composes it (title, abstract, body, one blank line
# apart): concept offsets point into it. A drift is caught per concept: a span that no longer reads as `matched`
# gets no sentence text.
EXPORTED_TEXT = """
    SELECT NULLIF(concat_ws(E'\\n\\n', NULLIF(title, ''), NULLIF(abstract, ''), NULLIF(full_text, '')), '')
    FROM clean_documents WHERE doc_id = %s
"""


class UnknownDocument(LookupError):
    """The document has no loaded results; the message says what to run."""


@dataclass(frozen=True)
class Neighbour:
    doc_id: str
    title: str | None
    similarity: float  # cosine similarity, 1 = same direction


@dataclass(frozen=True)
class ConceptHit:
    concept_id: str
    start: int
    end: int
    sentence: int
    matched: str
    sentence_text: str | None


@dataclass(frozen=True)
class DocumentConcepts:
    doc_id: str
    title: str | None
    batch_id: str | None
    dictionary_version: str | None
    concepts: list[ConceptHit] = field(default_factory=list)


def similar(conn: psycopg.Connection, doc_id: str, limit: int = 10) -> list[Neighbour]:
    """The `limit` documents nearest to `doc_id` by cosine distance, through the HNSW index (approximate)."""
    row = conn.execute(statements.VECTOR_OF, (doc_id,)).fetchone()
    if row is None:
        raise _not_loaded(conn, doc_id, "no vector loaded for this document; run the pipeline with embeddings")
    with conn.transaction():
        conn.execute(statements.SET_EF_SEARCH, (str(max(40, 2 * (limit + 1))),))
        rows = conn.execute(statements.NEAREST, {"vector": row[0], "limit": limit + 1}).fetchall()
    hits = [Neighbour(r[0], r[1], round(float(r[2]), 6)) for r in rows if r[0] != doc_id]
    return hits[:limit]


def document_concepts(conn: psycopg.Connection, doc_id: str) -> DocumentConcepts:
    """The concepts found in a document, with offsets, sentence numbers and (when the text is here) sentences."""
    result = conn.execute(statements.RESULT_OF, (doc_id,)).fetchone()
    if result is None:
        raise _not_loaded(conn, doc_id, "no results loaded for this document; run `corpusbridge run` (or export, "
                          "compute and load)")  # fmt: skip
    rows = conn.execute(statements.CONCEPTS_OF, (doc_id,)).fetchall()
    title_row = conn.execute(statements.TITLE_OF, (doc_id,)).fetchone()
    text_row = conn.execute(EXPORTED_TEXT, (doc_id,)).fetchone()
    sentences = _sentences(text_row[0] if text_row else None, rows)
    hits = [
        ConceptHit(r[0], r[1], r[2], r[3], r[4], sentences.get(r[3]) if _reads(text_row, r) else None) for r in rows
    ]
    return DocumentConcepts(doc_id, title_row[0] if title_row else None, result[0], result[2], hits)


def _reads(text_row: tuple | None, row: tuple) -> bool:
    return bool(text_row and text_row[0] and text_row[0][row[1] : row[2]] == row[4])


def _not_loaded(conn: psycopg.Connection, doc_id: str, why: str) -> UnknownDocument:
    """A lookup that found nothing: an id that names no clean document is a different mistake from a document
    whose results are not loaded yet, and each wants its own advice."""
    if conn.execute(statements.TITLE_OF, (doc_id,)).fetchone() is None:
        rejected = conn.execute(statements.REJECTED, (doc_id,)).fetchone()
        if rejected is not None:
            detail = f" ({rejected[1]})" if rejected[1] else ""
            return UnknownDocument(
                f"{doc_id}: sanitize rejected this document: {rejected[0]}{detail}, so it has no clean text to "
                "process; `corpusbridge sanitize --rejects N` lists the rejected ones"
            )
        return UnknownDocument(
            f"{doc_id}: no clean document has this id (ids read like doi:10.1000/xyz, pmid:123, or id:<the record's "
            "own id> for records without a DOI or PMID; find one with "
            "`corpusbridge search WORDS`)"
        )
    return UnknownDocument(f"{doc_id}: {why}")


def _sentences(text: str | None, rows: list[tuple]) -> dict[int, str]:
    """Sentence number -> its text, split as the payload splits (only when there are concepts to show)."""
    if not text or not rows:
        return {}
    from corpusbridge.extract.sentences.splitter import SentenceSplitter

    bounds = [0, *SentenceSplitter().starts(text), len(text)]
    return {number: text[bounds[number] : bounds[number + 1]].strip() for number in range(len(bounds) - 1)}
