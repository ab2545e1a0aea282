"""One normalization for dictionary terms and document text, with offsets back into the original text.

Folding is Unicode NFKC + case folding (NFKC(casefold(NFKC(x))), the compatibility caseless form) and whitespace
runs -> one space. Folding can change lengths ('ß' -> 'ss', 'ﬁ' -> 'fi', 'e'+U+0301 -> 'é'), so a text whose
folding is not char-for-char carries an offset map: every folded character knows the original span it came from,
and a match is always reported as Python string offsets into the ORIGINAL text. A text whose only change of length
is its whitespace runs (every exported document: title, abstract and body are joined by a blank line) keeps a map of
its runs alone; anything else keeps one original span per folded character.

Matching then works on a 1:1 "mapped" copy of the folded text in which every non-word character is a space, so
dictionary keys can be anchored at word boundaries (`' ' + term + ' '`). Word characters are those of `\\w`
(alphanumerics, underscore) plus combining marks, so an accent never splits a word.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

# Changing any rule here changes every dictionary version: the version hash includes this number.
NORMALIZATION_VERSION = 1

HYPHENS = "-\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"
_ASCII_BYTES = bytes(range(128))
# Byte tables for the ASCII part of UTF-8 text (bytes >= 0x80 pass through, so UTF-8 stays valid): bytes.translate
# runs at memory speed where str.translate with a dict would look every character up.
_FOLD_BYTES = bytes(32 if chr(i).isspace() else ord(chr(i).lower()) for i in range(128)) + bytes(range(128, 256))
_SPACE_BITS = bytes(1 if i == 32 else 0 for i in range(256))
_FOLD_MAP_BYTES = bytes(ord(chr(i).lower()) if chr(i).isalnum() or chr(i) == "_" else 32 for i in range(128)) + bytes(
    range(128, 256)
)


def is_word_char(char: str) -> bool:
    """The word-boundary rule shared by terms and text."""
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")


class _WordMap(dict):
    """str.translate table, filled lazily: word characters map to themselves, all others to a space."""

    def __missing__(self, code: int) -> int:
        value = code if is_word_char(chr(code)) else 32
        self[code] = value
        return value


class _GapMap(dict):
    """str.translate table: whitespace and hyphens become a space, everything else stays (for gap checks)."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        value = 32 if char.isspace() or char in HYPHENS else code
        self[code] = value
        return value


WORD_MAP = _WordMap()
GAP_MAP = _GapMap()


def fold(text: str) -> str:
    """NFKC case fold of a piece of text (no whitespace handling)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


@lru_cache(maxsize=65536)
def _simple_fold(char: str) -> str | None:
    """The one-character fold of `char`, or None when folding it is not a 1:1 character map."""
    if unicodedata.combining(char) or unicodedata.category(char).startswith("M") or "\u1100" <= char <= "\u11ff":
        return None
    folded = fold(char)
    if len(folded) != 1:
        return None
    return " " if folded.isspace() else folded


Spans = list[tuple[int, int, int]]


class OffsetMap(Protocol):
    """The way from folded offsets back to original ones."""

    def starts(self) -> list[int]: ...

    def ends(self) -> list[int]: ...

    def original_spans(self, spans: Spans) -> Spans: ...


@dataclass(frozen=True)
class CharOffsets:
    """The original span of every folded character: `starts[i]`/`ends[i]` for folded char i (the general path)."""

    start_list: list[int]
    end_list: list[int]

    def starts(self) -> list[int]:
        return self.start_list

    def ends(self) -> list[int]:
        return self.end_list

    def original_spans(self, spans: Spans) -> Spans:
        starts, ends = self.start_list, self.end_list
        return [(starts[start], ends[end - 1], tag) for start, end, tag in spans]


class RunOffsets:
    """Offsets of a text folded 1:1 except its whitespace runs, each folded to one space.

    `runs`: the original (start, end) of each run, in order; per run, `positions` (where its space is in the folded
    text) and `shifts` (original minus folded offset of every folded character after it). A few integers per run
    instead of two per character: building the per-character lists was most of the time of normalizing a document.
    A plain class with slots: one is made per exported document, and a frozen dataclass costs ~1 us more to make.
    """

    __slots__ = ("length", "positions", "runs", "shifts")

    def __init__(self, runs: list[tuple[int, int]], length: int) -> None:
        self.runs, self.length = runs, length  # length of the original text
        self.positions: list[int] = []
        self.shifts: list[int] = []
        shift = 0
        for start, end in runs:
            self.positions.append(start - shift)
            shift += end - start - 1
            self.shifts.append(shift)

    def starts(self) -> list[int]:
        """Per folded character (what `CharOffsets` holds), for callers that want the whole map."""
        starts: list[int] = []
        previous = 0
        for start, end in self.runs:
            starts.extend(range(previous, start + 1))
            previous = end
        starts.extend(range(previous, self.length))
        return starts

    def ends(self) -> list[int]:
        ends: list[int] = []
        previous = 0
        for start, end in self.runs:
            ends.extend(range(previous + 1, start + 1))
            ends.append(end)
            previous = end
        ends.extend(range(previous + 1, self.length + 1))
        return ends

    def original_spans(self, spans: Spans) -> Spans:
        positions, shifts, runs = self.positions, self.shifts, self.runs
        mapped: Spans = []
        for start, end, tag in spans:
            run = bisect_right(positions, start) - 1
            if run >= 0:
                start = runs[run][0] if positions[run] == start else start + shifts[run]
            run = bisect_right(positions, end - 1) - 1
            if run >= 0:
                end = runs[run][1] if positions[run] == end - 1 else end + shifts[run]
            mapped.append((start, end, tag))
        return mapped


@dataclass(frozen=True)
class NormalizedText:
    """The folded text, its 1:1 mapped copy that the automaton scans, and the way back to the original.

    `offsets` is None where folded and original are 1:1.
    """

    original: str
    mapped: str
    folded: str
    offsets: OffsetMap | None = None

    @property
    def starts(self) -> list[int] | None:
        """`starts[i]`: where the original span of folded char i starts (None: 1:1)."""
        return None if self.offsets is None else self.offsets.starts()

    @property
    def ends(self) -> list[int] | None:
        return None if self.offsets is None else self.offsets.ends()

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original offsets of folded[start:end]; a partial expansion ('ﬁ' -> 'fi') snaps out to the whole char."""
        if self.offsets is None:
            return start, end
        (start, end, _), *_ = self.offsets.original_spans([(start, end, 0)])
        return start, end

    def original_spans(self, spans: Spans) -> Spans:
        """`original_span` of many (start, end, tag) at once (the matcher's per-document call)."""
        return spans if self.offsets is None else self.offsets.original_spans(spans)

    def paragraph_breaks(self) -> list[int]:
        """Folded offsets of the spaces that stand for a blank line (whitespace holding two line breaks), in order.

        The export joins title, abstract and body with one, so a term must not span it. Only whitespace runs can
        hold one, and a text without runs folds 1:1 (no offsets).
        """
        offsets, original = self.offsets, self.original
        if offsets is None or "\n" not in original:
            return []
        if isinstance(offsets, RunOffsets):
            return [
                at for (s, e), at in zip(offsets.runs, offsets.positions, strict=True) if original.count("\n", s, e) > 1
            ]
        starts, ends = offsets.starts(), offsets.ends()
        return [i for i, char in enumerate(self.folded) if char == " " and original.count("\n", starts[i], ends[i]) > 1]


def _has_whitespace_run(folded: bytes) -> bool:
    """Two spaces in a row (ASCII whitespace is a space once folded). `b"  " in folded` reads the bytes at ~0.7 GB/s
    here, half the fast path's time; a 0/1 byte per space read as one big integer, ANDed with itself shifted by a
    byte, is a third cheaper (measured on the benchmark corpus, same answers)."""
    spaces = int.from_bytes(folded.translate(_SPACE_BITS), "little")
    return spaces & (spaces >> 8) != 0


def normalize_text(text: str) -> NormalizedText:
    """Fold a document, keeping offsets.

    Fast path (nearly all text): the ASCII part is mapped with a byte table, then each distinct non-ASCII character
    that folds to one character is replaced with `str.replace`; whitespace runs, if any, are then collapsed with a
    regex and keep a map of the runs only. Anything else (an expansion like 'ß', combining marks) takes the general
    path, which keeps an original span per folded character.
    """
    if text.isascii():
        raw = text.encode("ascii")
        folded_bytes = raw.translate(_FOLD_BYTES)
        if _has_whitespace_run(folded_bytes):
            return _collapse_ascii_runs(text, folded_bytes)
        return NormalizedText(text, raw.translate(_FOLD_MAP_BYTES).decode("ascii"), folded_bytes.decode("ascii"))
    raw = text.encode("utf-8")
    folded_bytes = raw.translate(_FOLD_BYTES)
    runs = _has_whitespace_run(folded_bytes)
    folded = folded_bytes.decode("utf-8")
    mapped = raw.translate(_FOLD_MAP_BYTES).decode("utf-8")
    # Deleting the ASCII bytes leaves the non-ASCII characters: much cheaper than a regex over the text.
    for char in set(raw.translate(None, _ASCII_BYTES).decode("utf-8")):
        single = _simple_fold(char)
        if single is None:
            # An expansion or a combining mark: general path.
            return _fold_mapped(text)
        # A character folds to a space exactly when it is whitespace (checked over all of Unicode in the tests), so
        # the folded text's spaces stand where the original's whitespace does, and may make a run with a neighbour.
        runs = runs or single == " "
        if single != char:
            folded = folded.replace(char, single)
        mapped_char = single if is_word_char(single) else " "
        if mapped_char != char:
            mapped = mapped.replace(char, mapped_char)
    if runs:
        return _collapse_runs(text, mapped, folded)
    return NormalizedText(text, mapped, folded)


_RUN = re.compile("  +")


def _collapse_ascii_runs(text: str, folded: bytes) -> NormalizedText:
    """`_collapse_runs` of ASCII text, on bytes: runs found with `bytes.find` (memchr speed; a regex search cost
    ~2.5 us per document, as much as the rest of the fast path), and the mapped text made by the byte table from the
    collapsed folded text (the table maps a folded byte as it maps the original one), so no second set of slices."""
    runs: list[tuple[int, int]] = []
    parts: list[bytes] = []
    size, previous = len(folded), 0
    start = folded.find(b"  ")
    while start >= 0:
        end = start + 2
        while end < size and folded[end] == 32:
            end += 1
        runs.append((start, end))
        parts.append(folded[previous : start + 1])
        previous = end
        start = folded.find(b"  ", end)
    parts.append(folded[previous:])
    collapsed = b"".join(parts)
    mapped = collapsed.translate(_FOLD_MAP_BYTES).decode("ascii")
    return NormalizedText(text, mapped, collapsed.decode("ascii"), RunOffsets(runs, len(text)))


def _collapse_runs(text: str, mapped: str, folded: str) -> NormalizedText:
    """`mapped`/`folded` (1:1 with `text`, whitespace already single spaces) with each run of spaces made one.

    The same result as the general path's per-character folding of such a text, offsets included (a test compares
    them), at the cost of a regex search and a few slices per run.
    """
    runs = [match.span() for match in _RUN.finditer(folded)]
    if not runs:
        return NormalizedText(text, mapped, folded)
    mapped_parts = []
    previous = 0
    for start, end in runs:
        mapped_parts.append(mapped[previous : start + 1])
        previous = end
    mapped_parts.append(mapped[previous:])
    return NormalizedText(text, "".join(mapped_parts), _RUN.sub(" ", folded), RunOffsets(runs, len(text)))


def _segments(text: str) -> list[tuple[int, int]]:
    """Spans of `text` folded as one unit: a whitespace run, or a base character with its combining marks."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        if text[i].isspace():
            while j < n and text[j].isspace():
                j += 1
        else:
            while j < n and unicodedata.combining(text[j]):
                j += 1
        spans.append((i, j))
        i = j
    return spans


def _fold_mapped(text: str) -> NormalizedText:
    """The general path: fold segment by segment and record, per folded char, the original span."""
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, j in _segments(text):
        piece = " " if text[i].isspace() else fold(text[i:j])
        pieces.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
    folded = "".join(pieces)
    return NormalizedText(text, folded.translate(WORD_MAP), folded, CharOffsets(starts, ends))


def normalize_term(term: str) -> str:
    """Fold a dictionary term the way text is folded, then trim it to its first and last word characters."""
    folded = " ".join(fold(term).split())
    mapped = folded.translate(WORD_MAP)
    words = mapped.split()
    if not words:
        return ""
    first = mapped.index(words[0])
    last = mapped.rindex(words[-1]) + len(words[-1])
    return folded[first:last]


def term_variants(term: str, hyphens: bool = False, plurals: bool = False) -> list[str]:
    """The normalized term plus optional variants: hyphen-joined ('non-small' -> 'nonsmall'), English plurals."""
    base = normalize_term(term)
    if not base:
        return []
    variants = [base]
    if hyphens and any(h in base for h in HYPHENS):
        variants.append(base.translate({ord(h): None for h in HYPHENS}))
    if plurals:
        variants.extend(_plural(v) for v in list(variants))
    return list(dict.fromkeys(variants))


def _plural(term: str) -> str:
    if term.endswith(("s", "x", "z", "ch", "sh")):
        return term + "es"
    if term.endswith("y") and len(term) > 1 and term[-2] not in "aeiou":
        return term[:-1] + "ies"
    return term + "s"
