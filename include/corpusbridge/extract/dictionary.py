"""Concept dictionary -> Aho-Corasick automaton, built once on the workstation and shipped as a versioned artifact.

The artifact is a folder: `automaton-K.pickle` (pyahocorasick automata, integer values: one for a small dictionary,
several for a big one, each holding the keys of a range of first letters), `entries.bin` (per key:
length, kind and concept group), `groups.txt` (one line per concept group, its concept ids tab-separated),
`groups.idx` (where each line starts) and `meta.json` (version, options, counts). The version is the sha256 of the
normalized dictionary, so two dictionaries that normalize to the same keys get the same version whatever their file
layout, and nodes can check they all match with the same one.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import time
from array import array
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import accumulate
from pathlib import Path

import ahocorasick

from corpusbridge.extract.normalize import GAP_MAP, NORMALIZATION_VERSION, WORD_MAP, term_variants

log = logging.getLogger(__name__)

ARTIFACT_FORMAT = 4
# Unpickling holds an automaton's whole pickle while it rebuilds the nodes, so a 1M-term dictionary peaked at its
# pickle (~510 MB) on top of its nodes (~600 MB). Big dictionaries are split into parts of at most this many pickled
# bytes, loaded one after the other: measured at 1M terms, 2 parts cut the loader's peak from 1,278 to 958 MB for
# ~20% more scan time (each part scans the whole text), so small dictionaries stay in one automaton.
PART_PICKLE_BYTES = 320 * 2**20
PICKLED_BYTES_PER_NODE = 36  # measured: 508 MB for the 14.1M nodes of the benchmark's 1M terms
MAX_KEY_CHARS = 2**14
# Entry kinds (low 2 bits of the entry info): what the matcher must check once a key is found.
SINGLE_WORD, MULTI_WORD, PUNCTUATED = 0, 1, 2


class DictionaryError(ValueError):
    """A dictionary file or artifact that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class TermRow:
    concept_id: str
    term: str
    line: int


@dataclass(frozen=True)
class BuildOptions:
    hyphen_variants: bool = False
    plural_variants: bool = False


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


class ConceptGroups:
    """The concept ids of each group, split out of one string on first use: a 1M-term artifact has ~1M groups, and a
    tuple for each cost 0.14 s of serial load time and ~90 MB (measured), where a shard touches a few thousand."""

    def __init__(self, text: str, starts: array) -> None:
        self._text = text
        self._starts = starts  # where each group's line starts, plus one entry past the end
        self._parsed: dict[int, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._starts) - 1

    def __getitem__(self, index: int) -> tuple[str, ...]:
        group = self._parsed.get(index)
        if group is None:
            if not 0 <= index < len(self):
                raise IndexError(f"concept group {index} out of range ({len(self)} groups)")
            line = self._text[self._starts[index] : self._starts[index + 1] - 1]
            group = self._parsed[index] = tuple(line.split("\t"))
        return group


@dataclass
class Dictionary:
    """A loaded artifact: what the matcher needs and nothing else."""

    version: str
    automata: list[ahocorasick.Automaton]  # their keys are disjoint; entry numbers are global
    infos: array  # per entry: key length << 2 | kind
    entry_groups: array  # per entry: index into `groups`
    groups: ConceptGroups
    punctuated: dict[str, dict[str, int]]  # mapped key -> {gap form of a term -> group}
    options: BuildOptions
    load_seconds: float = 0.0


# --- reading term files -------------------------------------------------------------------------------------------


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def _layout(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    return "csv" if suffix == ".csv" else "tsv"


def read_terms(path: Path) -> Iterator[TermRow]:
    """Rows of a TSV (`concept_id<TAB>term` header), CSV (`concept_id,term` header) or JSONL (`concept_id` plus
    `term` and/or `synonyms`/`terms` lists) dictionary, one row per synonym."""
    layout = _layout(path)
    with _open_text(path) as handle:
        if layout == "jsonl":
            yield from _read_jsonl(path, handle)
        else:
            yield from _read_delimited(path, handle, "," if layout == "csv" else "\t")


def _read_delimited(path: Path, handle: io.TextIOBase, delimiter: str) -> Iterator[TermRow]:
    reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header[:2]] != ["concept_id", "term"]:
        raise DictionaryError(
            f"{path}: first line must be the header 'concept_id{delimiter}term' (got {header!r}); add it"
        )
    for row in reader:
        if len(row) != 2 or not row[0].strip():
            raise DictionaryError(
                f"{path}:{reader.line_num}: expected 2 fields 'concept_id{delimiter}term' with a concept id, "
                f"got {row!r}; fix or remove the line"
            )
        yield TermRow(row[0].strip(), row[1], reader.line_num)


def _read_jsonl(path: Path, handle: io.TextIOBase) -> Iterator[TermRow]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            concept = str(record["concept_id"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise DictionaryError(
                f"{path}:{number}: not a JSON object with 'concept_id' ({exc}); fix the line"
            ) from exc
        terms = ([record["term"]] if "term" in record else []) + record.get("synonyms", []) + record.get("terms", [])
        if not concept or not terms or not all(isinstance(t, str) for t in terms):
            raise DictionaryError(f"{path}:{number}: needs a concept_id and string 'term'/'synonyms'/'terms'")
        for term in terms:
            yield TermRow(concept, term, number)


# --- building -----------------------------------------------------------------------------------------------------


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


class _Tables:
    """Entries and concept groups as they are numbered in the automaton."""

    def __init__(self) -> None:
        self.infos = array("I")
        self.entry_groups = array("i")
        self.group_index: dict[tuple[str, ...], int] = {}
        self.punctuated: dict[str, dict[str, int]] = {}

    def group(self, concepts: set[str] | list[str]) -> int:
        members = tuple(sorted(set(concepts)))
        return self.group_index.setdefault(members, len(self.group_index))

    def add(self, key: str, pairs: set[tuple[str, str]]) -> None:
        mapped = key[1:-1]
        gaps = {gap for gap, _ in pairs}
        if " " not in mapped:
            kind, group = SINGLE_WORD, self.group([c for _, c in pairs])
        elif gaps == {mapped}:
            kind, group = MULTI_WORD, self.group([c for _, c in pairs])
        else:
            kind, group = PUNCTUATED, -1
            self.punctuated[mapped] = {g: self.group([c for gg, c in pairs if gg == g]) for g in sorted(gaps)}
        self.infos.append(len(key) << 2 | kind)
        self.entry_groups.append(group)


def build_dictionary(terms: Path, out: Path, options: BuildOptions | None = None) -> BuildReport:
    """Read, normalize, build and save; the artifact folder is written under a temp name and renamed."""
    options = options or BuildOptions()
    started = time.perf_counter()
    collected = _collect(read_terms(terms), options)
    if not collected.keys:
        raise DictionaryError(f"{terms}: no usable terms ({collected.terms_read} read); is it the right file?")
    version = dictionary_version(collected.keys, options)
    keys = sorted(collected.keys)
    tables = _Tables()
    for key in keys:
        tables.add(key, collected.keys[key])
    automata = [_automaton(keys, part) for part in split_keys(keys)]
    ambiguous = sum(1 for pairs in collected.keys.values() if len({c for _, c in pairs}) > 1)
    concepts = len({c for pairs in collected.keys.values() for _, c in pairs})
    size = _save(out, automata, tables, version, options)
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


def _save(
    out: Path, automata: list[ahocorasick.Automaton], tables: _Tables, version: str, options: BuildOptions
) -> int:
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # pickle, not Automaton.save: measured at 1M terms (integer values), save() writes 951 MB that load() takes 10.9 s
    # of CPU to read back (it sorts and binary-searches every node address), peaking at 1.66 GB.
    for number, automaton in enumerate(automata):
        with open(tmp / f"automaton-{number}.pickle", "wb") as handle:
            pickle.dump(automaton, handle, protocol=pickle.HIGHEST_PROTOCOL)
    with open(tmp / "entries.bin", "wb") as handle:
        tables.infos.tofile(handle)
        tables.entry_groups.tofile(handle)
    lines = ["\t".join(g) for g in sorted(tables.group_index, key=tables.group_index.__getitem__)]
    (tmp / "groups.txt").write_text("\n".join(lines), encoding="utf-8")
    with open(tmp / "groups.idx", "wb") as handle:
        array("Q", [0, *accumulate(len(line) + 1 for line in lines)]).tofile(handle)
    meta = {
        "format": ARTIFACT_FORMAT,
        "version": version,
        "normalization": NORMALIZATION_VERSION,
        "options": asdict(options),
        "entries": len(tables.infos),
        "automata": len(automata),
        "groups": len(lines),
        "punctuated": tables.punctuated,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return sum(p.stat().st_size for p in out.iterdir())


def load_dictionary(artifact: Path) -> Dictionary:
    """Load a built artifact (never rebuilds); fails clearly on a missing or foreign folder."""
    started = time.perf_counter()
    meta_path = artifact / "meta.json"
    if not meta_path.is_file():
        raise DictionaryError(
            f"{artifact}: not a dictionary artifact (no meta.json); build one with `corpusbridge dictionary build`"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != ARTIFACT_FORMAT or meta.get("normalization") != NORMALIZATION_VERSION:
        raise DictionaryError(f"{artifact}: built by another corpusbridge version; rebuild the dictionary")
    automata = []
    for number in range(meta["automata"]):  # one after the other: only one pickle is held at a time
        with open(artifact / f"automaton-{number}.pickle", "rb") as handle:
            automata.append(pickle.load(handle))  # our own artifact: a foreign folder fails the format check above
    infos, entry_groups = array("I"), array("i")
    with open(artifact / "entries.bin", "rb") as handle:
        infos.fromfile(handle, meta["entries"])
        entry_groups.fromfile(handle, meta["entries"])
    starts = array("Q")
    with open(artifact / "groups.idx", "rb") as handle:
        starts.fromfile(handle, meta["groups"] + 1)
    groups = ConceptGroups((artifact / "groups.txt").read_text(encoding="utf-8"), starts)
    return Dictionary(
        version=meta["version"],
        automata=automata,
        infos=infos,
        entry_groups=entry_groups,
        groups=groups,
        punctuated=meta["punctuated"],
        options=BuildOptions(**meta["options"]),
        load_seconds=round(time.perf_counter() - started, 3),
    )


def read_version(artifact: Path) -> str:
    """The artifact's dictionary version without loading the automaton (for the cheap "already done?" check)."""
    try:
        return str(json.loads((artifact / "meta.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise DictionaryError(
            f"{artifact}: not a dictionary artifact ({exc}); build one with `corpusbridge dictionary build`"
        ) from exc
