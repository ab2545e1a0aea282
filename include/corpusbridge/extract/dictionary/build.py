"""Terms -> normalized keys -> Aho-Corasick automata -> the artifact: `corpusbridge dictionary build`, on the
workstation only (nodes load the result with artifact.load_dictionary and never build).

The version is the sha256 of the normalized dictionary, so two term files that normalize to the same keys get the
same version whatever their layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ahocorasick

from corpusbridge.extract.dictionary.artifact import BuildOptions, DictionaryError, EntryTables, save_artifact
from corpusbridge.extract.dictionary.normalize import GAP_MAP, NORMALIZATION_VERSION, WORD_MAP, term_variants
from corpusbridge.extract.dictionary.terms import TermRow, read_terms

# Unpickling holds an automaton's whole pickle while it rebuilds the nodes, so a 1M-term dictionary peaked at its
# pickle (~510 MB) on top of its nodes (~600 MB). Big dictionaries are split into parts of at most this many pickled
# bytes, loaded one after the other: measured at 1M terms, 2 parts cut the loader's peak from 1,278 to 958 MB for
# ~20% more scan time (each part scans the whole text), so small dictionaries stay in one automaton.
PART_PICKLE_BYTES = 320 * 2**20
PICKLED_BYTES_PER_NODE = 36  # measured: 508 MB for the 14.1M nodes of the benchmark's 1M terms
MAX_KEY_CHARS = 2**14


@dataclass
class BuildReport:
    """What `corpusbridge dictionary build` prints: counts reconcile (read = used + empty)."""

    version: str
    artifact: str
    terms_read: int
    terms_empty: int
    keys: int
    concepts: int
    ambiguous_keys: int
    build_seconds: float
    artifact_bytes: int
    empty_lines: list[int] = field(default_factory=list)


@dataclass
class _Collected:
    keys: dict[str, set[tuple[str, str]]]
    terms_read: int
    empty_lines: list[int]


def _collect(rows: Iterator[TermRow], options: BuildOptions) -> _Collected:
    """Normalized key -> {(gap form, concept id)}; a key is `' ' + mapped term + ' '`."""
    keys: dict[str, set[tuple[str, str]]] = {}
    read = 0
    empty: list[int] = []
    for row in rows:
        read += 1
        variants = term_variants(row.term, options.hyphen_variants, options.plural_variants)
        if not variants:
            empty.append(row.line)
        for variant in variants:
            key = " " + variant.translate(WORD_MAP) + " "
            if len(key) >= MAX_KEY_CHARS:
                raise DictionaryError(f"line {row.line}: term longer than {MAX_KEY_CHARS} characters; shorten it")
            keys.setdefault(key, set()).add((variant.translate(GAP_MAP), row.concept_id))
    return _Collected(keys, read, empty)


def dictionary_version(keys: dict[str, set[tuple[str, str]]], options: BuildOptions) -> str:
    """sha256 of the normalized dictionary: rules version, options, and every (key, gap form, concept) sorted."""
    digest = hashlib.sha256(f"norm={NORMALIZATION_VERSION};{json.dumps(asdict(options), sort_keys=True)}\n".encode())
    for key in sorted(keys):
        for gap, concept in sorted(keys[key]):
            digest.update(f"{key}\t{gap}\t{concept}\n".encode())
    return digest.hexdigest()


def build_dictionary(terms: Path, out: Path, options: BuildOptions | None = None) -> BuildReport:
    """Read, normalize, build and save; the artifact folder is written under a temp name and renamed."""
    options = options or BuildOptions()
    started = time.perf_counter()
    collected = _collect(read_terms(terms), options)
    if not collected.keys:
        raise DictionaryError(f"{terms}: no usable terms ({collected.terms_read} read); is it the right file?")
    version = dictionary_version(collected.keys, options)
    keys = sorted(collected.keys)
    tables = EntryTables()
    for key in keys:
        tables.add(key, collected.keys[key])
    automata = [_automaton(keys, part) for part in split_keys(keys)]
    ambiguous = sum(1 for pairs in collected.keys.values() if len({c for _, c in pairs}) > 1)
    concepts = len({c for pairs in collected.keys.values() for _, c in pairs})
    size = save_artifact(out, automata, tables, version, options)
    return BuildReport(
        version=version,
        artifact=str(out),
        terms_read=collected.terms_read,
        terms_empty=len(collected.empty_lines),
        keys=len(collected.keys),
        concepts=concepts,
        ambiguous_keys=ambiguous,
        build_seconds=round(time.perf_counter() - started, 3),
        artifact_bytes=size,
        empty_lines=collected.empty_lines[:20],
    )


def split_keys(keys: list[str]) -> list[range]:
    """Sorted keys cut into contiguous ranges of whole first letters (so no trie node is in two parts), each of about
    PART_PICKLE_BYTES pickled at most; a single range for all but big dictionaries."""
    # Trie nodes of sorted keys: each key adds the characters it does not share with the key before it.
    nodes, previous = [], ""
    for key in keys:
        nodes.append(len(key) - len(os.path.commonprefix((previous, key))))  # noqa: RUF071 (characters, not paths)
        previous = key
    total = sum(nodes) * PICKLED_BYTES_PER_NODE
    parts = max(1, -(-total // PART_PICKLE_BYTES))
    cuts: list[range] = []
    done = start = 0
    for index, key in enumerate(keys):
        starts_letter = index > 0 and key[1] != keys[index - 1][1]
        if starts_letter and done * PICKLED_BYTES_PER_NODE >= (len(cuts) + 1) * total / parts:
            cuts.append(range(start, index))
            start = index
        done += nodes[index]
    cuts.append(range(start, len(keys)))
    return cuts


def _automaton(keys: list[str], part: range) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for index in part:
        automaton.add_word(keys[index], index)
    automaton.make_automaton()
    return automaton
