"""Seeded synthetic dictionary and corpus for the extraction benchmark.

Words: spaCy's English stop words as the most frequent ranks, then pronounceable pseudo-words, drawn with Zipf
frequencies (no word list can be downloaded here). Terms: unique 1-4-word combinations of the vocabulary; the 1k
and 100k dictionaries are prefixes of the 1M one. Documents: sentences of 8-30 words ending in '. ', some commas,
dictionary terms (from the 1k prefix, so every dictionary size finds them) injected at 1 per 50 words.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from spacy.lang.en.stop_words import STOP_WORDS

ONSETS = ["", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "br", "ch", "cl", "st", "tr"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"]
CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck"]


def vocabulary(size: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    words = sorted(STOP_WORDS)
    rng.shuffle(words)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(1, 4)))
        if len(word) > 2 and word not in seen:
            seen.add(word)
            words.append(word)
    return words


def terms(count: int, words: list[str], seed: int = 2) -> list[str]:
    """`count` unique terms; a prefix of the list is the smaller dictionary."""
    rng = random.Random(seed)
    content = words[400:]  # terms are made of content words, not stop words
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        n = rng.choices((1, 2, 3, 4), weights=(2, 48, 33, 17))[0]
        term = " ".join(rng.choice(content) for _ in range(n))
        if term not in seen:
            seen.add(term)
            out.append(term)
    return out


def write_terms(path: Path, items: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("concept_id\tterm\n")
        handle.writelines(f"C{i:07d}\t{t}\n" for i, t in enumerate(items))


def documents(total_bytes: int, words: list[str], injected: list[str], seed: int = 3) -> list[str]:
    """Abstract-sized documents (~3.5 kB) until `total_bytes` of text."""
    rng = random.Random(seed)
    weights = list(itertools.accumulate(1.0 / (rank + 1) ** 1.07 for rank in range(len(words))))
    docs: list[str] = []
    size = 0
    while size < total_bytes:
        stream = rng.choices(words, cum_weights=weights, k=560)
        for at in range(0, len(stream), 50):
            stream[at] = rng.choice(injected)
        docs.append(_sentences(stream, rng))
        size += len(docs[-1]) + 1
    return docs


def _sentences(stream: list[str], rng: random.Random) -> str:
    out: list[str] = []
    at = 0
    while at < len(stream):
        length = rng.randint(8, 30)
        chunk = stream[at : at + length]
        words = [w + "," if rng.random() < 0.04 else w for w in chunk]
        words[0] = words[0].capitalize()
        out.append(" ".join(words).rstrip(",") + ".")
        at += length
    return " ".join(out)
