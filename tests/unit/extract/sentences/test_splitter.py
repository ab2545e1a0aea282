"""The on-demand splitter must give exactly spaCy's blank("en") + sentencizer boundaries."""

from __future__ import annotations

import random

import pytest

from corpusbridge.extract.concepts.matcher import Match
from corpusbridge.extract.sentences.splitter import SentenceSplitter, as_spans, blank_pipeline, spacy_sentence_starts

PIECES = [
    "lung",
    "cancer",
    "e.g.",
    "Dr.",
    "U.S.",
    "3.5",
    "(see",
    "Fig.",
    "1)",
    "end.",
    "Next",
    "what?!",
    "wow!",
    "...",
    "—",
    '"Quote."',
    "i.e.,",
    "etc.",
    "p<0.05.",
    "vs.",
    "the",
    "CD4+",
    "IL-6",
    "end.Next",
    "(",
    ")",
    "»",
    "no.",
    "yes.)",
    ";",
    "don't",
    "10.5%.",
    "?",
    "!",
    "…",
    "。",
    "日本語。",
    ":)",
    "a.m.",
    "e.g",
    "Ca2+.",
    "'s",
    "3.",
    "a.",
    "A.",
    "DNA.",
    "x!",
    "co.",
    "Dr.",
    "vs.",
    "word.",
    "cells?",
    "2024.",
    "αβ.",
    "hes.",
    "cannot.",
    "Hes.",
]
SEPARATORS = [" ", " ", " ", " ", "  ", "\n", " \n ", "\t", "\n\n"]


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(PIECES) + rng.choice(SEPARATORS) for _ in range(rng.randint(0, 40))]
        text = "".join(parts)
        texts.append(text.strip() if rng.random() < 0.3 else text)
    return texts


def test_splitter_agrees_with_the_spacy_pipeline_on_tricky_text() -> None:
    texts = _texts(1500, seed=11)
    splitter = SentenceSplitter()
    disagreements = [t for t, ref in zip(texts, spacy_sentence_starts(texts), strict=True) if splitter.starts(t) != ref]
    assert disagreements == []


def test_sentence_index_of_offsets() -> None:
    text = "Lung cancer is common. Dr. Smith saw it. Then cells!"
    splitter = SentenceSplitter()
    assert splitter.indices(text, [0, 23, 41, 46]) == [0, 1, 2, 2]


def test_spacy_spans_on_request() -> None:
    doc = blank_pipeline()("Small cell lung cancer in lungs.")
    spans = as_spans(doc, [Match("C1", 0, 22, "Small cell lung cancer")])
    assert [(s.text, s.label_) for s in spans] == [("Small cell lung cancer", "C1")]


def test_the_split_on_marks_and_the_regex_give_the_same_boundaries() -> None:
    """ASCII text takes `str.split` on '.!?' (no regex per mark); it must place every boundary as the regex path
    does, for every stretch of the text that `indices` looks at, and agree with spaCy."""
    rng = random.Random(12)
    pieces = [p for p in PIECES if p.isascii()] + ["co.", "mr.", "ms.", "dr.", "st.", "no.", "jan.", "abc.", "x1."]
    texts = []
    for _ in range(3_000):
        texts.append("".join(rng.choice(pieces) + rng.choice(SEPARATORS) for _ in range(rng.randint(1, 40))))
    split, regex = SentenceSplitter(), SentenceSplitter()
    regex._splits_on_marks = False  # the path every text with other marks (e.g. '。') takes
    for text in texts:
        for last in (len(text) - 1, rng.randrange(len(text))):
            assert split._starts(text, last) == regex._starts(text, last), (text, last)
    assert [split.starts(t) for t in texts[:1000]] == list(spacy_sentence_starts(texts[:1000]))


@pytest.mark.parametrize("reference", [False, True])
def test_a_blank_line_ends_a_sentence_once(reference: bool) -> None:
    """The export puts the title (no final period) a blank line before the abstract: the title is a sentence of its
    own. Where spaCy already ends one there (a period, or its whitespace token), the blank line adds nothing."""
    texts = [
        "Lung cancer in smokers\n\nWe studied cells. They grew.",
        "Lung cancer in smokers.\n\nWe studied cells. They grew.",
        "Lung cancer in smokers. \n \n We studied cells. They grew.",
        "\n\nLung cancer in smokers\n\n",
    ]
    starts = list(spacy_sentence_starts(texts)) if reference else [SentenceSplitter().starts(text) for text in texts]
    assert starts[0] == [24, 42]  # spaCy alone: [42]
    assert starts[1] == [23, 43]  # spaCy's own, at its whitespace token after the period
    assert starts[2] == [24, 46]
    assert starts[3] == []
    assert SentenceSplitter().indices(texts[0], [0, 24, 42]) == [0, 1, 2]
