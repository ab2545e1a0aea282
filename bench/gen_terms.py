"""Seeded synthetic dictionary and corpus for the extraction benchmark, from real English words.

Words: the most frequent alphabetic English words of `wordfreq` (its data ships in the wheel; a bench dependency
installed by `make bench-extract`), drawn with their real frequencies, as in the issue's measured baselines
(shared/notes/extraction-baselines.md). Terms: unique 1-4-word combinations of the vocabulary; the 1k and 100k
dictionaries are prefixes of the 1M one. Documents: sentences of 8-30 words ending in '. ', some commas,
dictionary terms (from the 1k prefix, so every dictionary size finds them) injected at 1 per 50 words.
"""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

from wordfreq import top_n_list, word_frequency

WORDLIST = "large"


def vocabulary(size: int) -> list[str]:
    """The `size` most frequent all-letter English words, most frequent first."""
    words = [word for word in top_n_list("en", 2 * size, wordlist=WORDLIST) if re.fullmatch("[a-z]+", word)]
    if len(words) < size:
        raise ValueError(f"wordfreq has only {len(words)} all-letter English words, asked for {size}")
    return words[:size]


def terms(count: int, words: list[str], seed: int = 2) -> list[str]:
    """`count` unique terms; a prefix of the list is the smaller dictionary."""
    rng = random.Random(seed)
    content = words[400:]  # terms are made of content words, not the commonest (function) words
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
    weights = list(itertools.accumulate(word_frequency(word, "en", wordlist=WORDLIST) for word in words))
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
