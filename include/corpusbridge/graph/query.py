"""What a person asks of the concept graph: a concept's neighbours with counts and NPMI."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from corpusbridge.graph import statements
from corpusbridge.graph.stats import By, npmi


class UnknownConcept(LookupError):
    """The concept is not in the loaded graph; the message says how to find one that is."""


@dataclass(frozen=True)
class Totals:
    docs: int  # documents loaded: the universe of document NPMI
    sentences: int  # sentences holding a concept: the universe of sentence NPMI
    changes: int = 0


@dataclass(frozen=True)
class Neighbour:
    concept_id: str
    label: str | None
    docs: int  # documents holding both
    sentences: int  # sentences holding both
    concept_docs: int  # documents holding the neighbour
    npmi_docs: float | None
    npmi_sentences: float | None


@dataclass(frozen=True)
class Related:
    concept_id: str
    label: str | None
    docs: int
    sentences: int
    by: str
    totals: Totals
    neighbours: list[Neighbour] = field(default_factory=list)


def totals(conn: psycopg.Connection) -> Totals:
    row = conn.execute(statements.TOTALS).fetchone()
    return Totals(*row) if row else Totals(0, 0, 0)


def related(
    conn: psycopg.Connection, concept_id: str, *, by: By = "document", limit: int = 20, min_count: int = 1
) -> Related:
    """The concept's neighbours, strongest NPMI (over `by`) first, then the most shared, then by id."""
    row = conn.execute(statements.CONCEPT, (concept_id,)).fetchone()
    if row is None:
        raise UnknownConcept(
            f"{concept_id}: not in the concept graph (no loaded document mentions it); list concepts with "
            "`corpusbridge graph export` or check the id against the dictionary"
        )
    _, label, docs, sentences = row
    total = totals(conn)
    params = {"concept": concept_id, "by": by, "min_count": min_count}
    neighbours = [
        Neighbour(
            other,
            other_label,
            pair_docs,
            pair_sentences,
            other_docs,
            npmi(pair_docs, docs, other_docs, total.docs, min_count=min_count),
            npmi(pair_sentences, sentences, other_sentences, total.sentences, min_count=min_count),
        )
        for other, other_label, pair_docs, pair_sentences, other_docs, other_sentences in conn.execute(
            statements.NEIGHBOURS, params
        )
    ]
    neighbours.sort(key=lambda n: _rank(n, by))
    return Related(concept_id, label, docs, sentences, by, total, neighbours[:limit])


def _rank(n: Neighbour, by: By) -> tuple[float, int, str]:
    score = n.npmi_sentences if by == "sentence" else n.npmi_docs
    count = n.sentences if by == "sentence" else n.docs
    return (-(score if score is not None else -2.0), -count, n.concept_id)
