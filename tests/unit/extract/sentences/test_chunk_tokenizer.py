"""The spaCy-free chunk tokenizer must split every chunk exactly as spaCy's blank("en") tokenizer does."""

from __future__ import annotations

import random

import pytest

from corpusbridge.extract.sentences.chunk_tokenizer import ChunkTokenizer
from corpusbridge.extract.sentences.spacy_rules import tokenizer_rules
from corpusbridge.extract.sentences.splitter import blank_pipeline

PARTS = [*"aAzZ09.,;:!?()[]{}'\"-–—/\\+*&%$#@<>=_~`^|…。«»’‘“”°µ", "e.g.", "U.S.", "Dr.", "n't", "'s", "http://"]
PARTS += ["www.", ".com", "3.5", "10", "km", "a.m.", "vs.", "hes", "cannot", ":)", "<3", "No.", "Jan.", "i.e"]


@pytest.fixture(scope="module")
def pair() -> tuple[ChunkTokenizer, object]:
    return ChunkTokenizer(tokenizer_rules()), blank_pipeline().tokenizer


def _spacy(tokenizer: object, chunk: str) -> list[str]:
    return [t.text for t in tokenizer(chunk)]  # type: ignore[operator]


def test_every_special_case_alone_and_wrapped_in_punctuation(pair: tuple[ChunkTokenizer, object]) -> None:
    ours, spacy_tokenizer = pair
    chunks = [
        wrapped
        for special in tokenizer_rules().special_cases
        if special.strip() == special and special
        for wrapped in (special, f"({special}", f"{special}.", f'"{special}",', f"{special}!)")
    ]
    assert [c for c in chunks if ours(c) != _spacy(spacy_tokenizer, c)] == []


def test_random_punctuation_heavy_chunks(pair: tuple[ChunkTokenizer, object]) -> None:
    ours, spacy_tokenizer = pair
    rng = random.Random(7)
    chunks = {"".join(rng.choice(PARTS) for _ in range(rng.randint(1, 6))) for _ in range(15000)}
    assert [c for c in sorted(chunks) if ours(c) != _spacy(spacy_tokenizer, c)] == []


def test_url_and_special_case_matcher_examples(pair: tuple[ChunkTokenizer, object]) -> None:
    ours, _ = pair
    assert ours("(https://example.org/a.b).") == ["(", "https://example.org/a.b", ")", "."]
    assert ours("don't.") == ["do", "n't", "."]
    assert ours("hes.") == ["he", "s."]  # "s." is a special case that the matcher finds across tokens
