"""Whole-word, leftmost-longest, non-overlapping dictionary matching with offsets into the original text.

Every key is anchored at both ends (`' ' + term + ' '`) and the text is scanned as `' ' + mapped + ' '` (non-word
characters mapped 1:1 to spaces), so every raw hit of the overlapping scan is already a whole-word occurrence.
Taking the leftmost-longest among ALL such hits (not filtering a leftmost-longest scan afterwards) is what makes
"lung cancers" with terms "lung"/"lung cancer" yield "lung", and "cell lines" with "cell"/"cell line" yield "cell":
the longer key never matches, so it can never hide the shorter one.

Between the words of a term, the text must have whitespace or a hyphen, or the very punctuation the term has
("t(9;22)"); "lung, cancer" is not "lung cancer".
"""

from __future__ import annotations

from itertools import chain
from typing import NamedTuple

from corpusbridge.extract.dictionary import MULTI_WORD, SINGLE_WORD, Dictionary
from corpusbridge.extract.normalize import GAP_MAP, NormalizedText, normalize_text


class Match(NamedTuple):
    """One concept found: offsets are Python string indices (end exclusive) into the original text.

    A NamedTuple, not a dataclass: millions are made per shard, and tuple construction is several times cheaper.
    """

    concept_id: str
    start: int
    end: int
    matched: str


class Matcher:
    """Finds concepts of one loaded dictionary in texts; cheap to share across forked workers."""

    def __init__(self, dictionary: Dictionary) -> None:
        self.dictionary = dictionary
        self._scans = [automaton.iter for automaton in dictionary.automata]
        self._groups = dictionary.groups
        self._punctuated = dictionary.punctuated
        # Hot-path tables as lists (indexing a list returns a stored int; indexing an array allocates one):
        # per entry, key length - 1, and the group of a single word; -2 - group for a plain multi-word term, whose
        # gaps are checked inline; -1 for a punctuated one (checked in `_gap_group`).
        self._reach = [(info >> 2) - 1 for info in dictionary.infos]
        self._direct = [
            group if info & 3 == SINGLE_WORD else -2 - group if info & 3 == MULTI_WORD else -1
            for info, group in zip(dictionary.infos, dictionary.entry_groups, strict=True)
        ]

    def find(self, text: str) -> list[Match]:
        """All concepts in `text`, ordered by start; ambiguous terms give one Match per concept, same span."""
        return [Match(concept, start, end, text[start:end]) for concept, start, end in self.locate(text)]

    def locate(self, text: str) -> list[tuple[str, int, int]]:
        """`find` as plain (concept_id, start, end) tuples: the program's hot path, where a Match per row costs
        more than the whole scan."""
        if not text:
            return []
        normalized = normalize_text(text)
        groups = self._groups
        if normalized.starts is None:
            return [(concept, s, e) for s, e, g in self.spans(normalized) for concept in groups[g]]
        located: list[tuple[str, int, int]] = []
        for start, end, group in self.spans(normalized):
            start, end = normalized.original_span(start, end)
            located.extend((concept, start, end) for concept in groups[group])
        return located

    def spans(self, normalized: NormalizedText) -> list[tuple[int, int, int]]:
        """(start, end, group) in folded-text offsets: leftmost-longest over all valid whole-word hits."""
        mapped = " " + normalized.mapped + " "
        candidates: list[tuple[int, int, int]] = []
        append = candidates.append
        reach, direct, folded = self._reach, self._direct, normalized.folded
        hits = self._scans[0](mapped) if len(self._scans) == 1 else chain.from_iterable(s(mapped) for s in self._scans)
        for last, entry in hits:
            # The padded key is mapped[start : last+1]; the term inside it is folded[start : last-1].
            start = last - reach[entry]
            group = direct[entry]
            if group < -1:
                # Plain multi-word term: its gaps are spaces; the text's may be spaces (the usual case) or hyphens.
                text, term = folded[start : last - 1], mapped[start + 1 : last]
                if text != term and text.translate(GAP_MAP) != term:
                    continue
                group = -2 - group
            elif group < 0:
                group = self._gap_group(normalized, start, last)
                if group < 0:
                    continue
            append((start, start + 1 - last, group))
        candidates.sort()
        chosen: list[tuple[int, int, int]] = []
        reached = -1
        for start, negative_length, group in candidates:
            if start >= reached:
                reached = start - negative_length
                chosen.append((start, reached, group))
        return chosen

    def _gap_group(self, normalized: NormalizedText, start: int, last: int) -> int:
        """The group of a punctuated term's hit whose gaps agree with one of its forms, else -1 (no match)."""
        term = normalized.mapped[start : last - 1]
        return self._punctuated[term].get(normalized.folded[start : last - 1].translate(GAP_MAP), -1)
