"""Raw hits of a dictionary's terms in padded mapped text (`' ' + mapped + ' '`), by one of two engines.

A hit is (entry, start, end): the term of key number `entry` and the space after it occupy `mapped[start:end]`, so
a hit ends at a word boundary; whether a space precedes it, the matcher checks. Every occurrence is reported,
overlapping ones included, in no promised order; the matcher validates and selects. At word starts both engines
report the same hits, so the matches are the same (tests/unit/extract/concepts/test_scan.py, and every matcher test runs
through both):

- pyahocorasick: the artifact's own automata, loaded and never built on a node, at any size.
- ahocorasick_rs: Rust DFAs compiled from the artifact's keys as the dictionary loads, only for dictionaries of at
  most RUST_MAX_KEYS keys. Measured on the benchmark corpus (bench/RESULTS.md): they scan about twice as fast and
  return a text's hits as one list; but a Rust automaton cannot be pickled, and its build grows fast with the
  number of keys (6 s and 1.3 GB at 1M), so big dictionaries scan with the shipped automata. The Rust keys leave out
  the leading space of the artifact's keys (`' ' + term + ' '`): a DFA whose keys all start with a space scanned 25%
  slower, for 0.1% more hits (inside words) to drop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Literal, get_args

import ahocorasick_rs

from corpusbridge.extract.dictionary.artifact import Dictionary

Engine = Literal["auto", "pyahocorasick", "ahocorasick_rs"]
ENGINES: tuple[str, ...] = get_args(Engine)
# The two DFAs (text and bytes) build in 0.01 s at 1k keys and 0.06 s at 5k, but superlinearly beyond (0.16 s at
# 10k): serial start-up time that a shard's faster scan must pay back.
RUST_MAX_KEYS = 5_000
Hits = Callable[[str], Iterable[tuple[int, int, int]]]


def choose_engine(dictionary: Dictionary, engine: Engine = "auto") -> str:
    """The engine to scan with: as asked, or for "auto" the Rust DFAs when the dictionary is small enough."""
    if engine not in ENGINES:
        raise ValueError(f"unknown matching engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    return "ahocorasick_rs" if len(dictionary.infos) <= RUST_MAX_KEYS else "pyahocorasick"


def hit_finder(dictionary: Dictionary, engine: str) -> Hits:
    """A function from mapped text to its raw hits, for a resolved engine name (see `choose_engine`)."""
    if engine == "ahocorasick_rs":
        return _rust_hits(dictionary)
    return _PyahocorasickHits(dictionary)


def dictionary_keys(dictionary: Dictionary) -> list[str]:
    """The padded keys by entry number, read back from the loaded automata (their values are entry numbers)."""
    keys = [""] * len(dictionary.infos)
    for automaton in dictionary.automata:
        for key, entry in automaton.items():
            keys[entry] = key
    return keys


def _rust_hits(dictionary: Dictionary) -> Hits:
    keys = [key[1:] for key in dictionary_keys(dictionary)]
    dfa = ahocorasick_rs.Implementation.DFA
    find_text = ahocorasick_rs.AhoCorasick(keys, implementation=dfa).find_matches_as_indexes
    encoded = [key.encode() for key in keys]
    find_bytes = ahocorasick_rs.BytesAhoCorasick(encoded, implementation=dfa).find_matches_as_indexes

    def hits(mapped: str) -> list[tuple[int, int, int]]:
        if mapped.isascii():
            # Byte offsets are character offsets here, and the bytes automaton skips converting them: measured 20%
            # less scan time on the benchmark corpus, encoding included.
            return find_bytes(mapped.encode("ascii"), overlapping=True)
        return find_text(mapped, overlapping=True)

    return hits


class _PyahocorasickHits:
    """pyahocorasick reports (last index, entry) of the padded key; the term's start comes from its length."""

    def __init__(self, dictionary: Dictionary) -> None:
        self._scans = [automaton.iter for automaton in dictionary.automata]
        # Term length per entry (key length - 2) as a list: indexing a list returns a stored int, indexing an array
        # allocates one.
        self._lengths = [(info >> 2) - 2 for info in dictionary.infos]

    def __call__(self, mapped: str) -> Iterator[tuple[int, int, int]]:
        lengths = self._lengths
        for scan in self._scans:
            for last, entry in scan(mapped):
                yield entry, last - lengths[entry], last + 1
