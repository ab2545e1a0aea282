"""The dictionary artifact's format: written once by the workstation's build, loaded (never rebuilt) on every node.

The artifact is a folder: `automaton-K.pickle` (pyahocorasick automata, integer values: one for a small dictionary,
several for a big one, each holding the keys of a range of first letters), `entries.bin` (per key:
length, kind and concept group), `groups.txt` (one line per concept group, its concept ids tab-separated),
`groups.idx` (where each line starts) and `meta.json` (version, options, counts). The version is the sha256 of the
normalized dictionary, so two dictionaries that normalize to the same keys get the same version whatever their file
layout, and nodes can check they all match with the same one.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from array import array
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path

import ahocorasick

from corpusbridge.extract.dictionary.normalize import NORMALIZATION_VERSION

ARTIFACT_FORMAT = 4
# Entry kinds (low 2 bits of the entry info): what the matcher must check once a key is found.
SINGLE_WORD, MULTI_WORD, PUNCTUATED = 0, 1, 2


class DictionaryError(ValueError):
    """A dictionary file or artifact that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class BuildOptions:
    hyphen_variants: bool = False
    plural_variants: bool = False


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


# --- writing (the workstation) ----------------------------------------------------------------------------------


class EntryTables:
    """Entries and concept groups as they are numbered in the automata: what `entries.bin` and `groups.*` hold."""

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


def save_artifact(
    out: Path, automata: list[ahocorasick.Automaton], tables: EntryTables, version: str, options: BuildOptions
) -> int:
    """Write the artifact folder under a temp name and rename it into place; returns its size in bytes."""
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


# --- reading (every node) ---------------------------------------------------------------------------------------


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
