"""Whole-word, leftmost-longest, non-overlapping dictionary matching with offsets into the original text.

Every key is anchored at word boundaries (`' ' + term + ' '`) and the text is scanned as `' ' + mapped + ' '`
(non-word characters mapped 1:1 to spaces), so every raw hit of the overlapping scan that has a space before it is a
whole-word occurrence (the Rust engine's keys leave the leading space out; see scan.py). Taking the
leftmost-longest among ALL such hits (not filtering a leftmost-longest scan afterwards) is what makes "lung cancers"
with terms "lung"/"lung cancer" yield "lung", and "cell lines" with "cell"/"cell line" yield "cell": the longer key
never matches, so it can never hide the shorter one.

Between the words of a term, the text must have whitespace or a hyphen, or the very punctuation the term has
("t(9;22)"); "lung, cancer" is not "lung cancer". A blank line is no such gap: a title ending in "lung" and an
abstract starting with "Cancer" hold no "lung cancer".
"""

from __future__ import annotations

from bisect import bisect_left
from typing import NamedTuple

from corpusbridge.extract.concepts.scan import Engine, choose_engine, hit_finder
from corpusbridge.extract.dictionary.artifact import MULTI_WORD, SINGLE_WORD, ConceptGroups, Dictionary
from corpusbridge.extract.dictionary.normalize import GAP_MAP, NormalizedText, normalize_text


class Match(NamedTuple):
    """One concept found: offsets are Python string indices (end exclusive) into the original text.

    A NamedTuple, not a dataclass: millions are made per shard, and tuple construction is several times cheaper.
    """

    concept_id: str
    start: int
    end: int
    matched: str


class _ConceptCache(dict[int, tuple[str, ...]]):
    """A group's concept ids, kept once looked up: a dict hit is one C lookup, where `ConceptGroups[group]` is a
    Python call per match (measured: half the time of turning the benchmark's 1k-term matches into rows)."""

    def __init__(self, groups: ConceptGroups) -> None:
        super().__init__()
        self._groups = groups

    def __missing__(self, group: int) -> tuple[str, ...]:
        concepts = self[group] = self._groups[group]
        return concepts


class Matcher:
    """Finds concepts of one loaded dictionary in texts; cheap to share across forked workers.

    `engine` picks the scanner of raw hits (see scan.py); the matches are the same with either.
    """

    def __init__(self, dictionary: Dictionary, engine: Engine = "auto") -> None:
        self.dictionary = dictionary
        self.engine = choose_engine(dictionary, engine)
        self._hits = hit_finder(dictionary, self.engine)
        self._groups = _ConceptCache(dictionary.groups)
        self._punctuated = dictionary.punctuated
        # Per entry, as a list (indexing a list returns a stored int; indexing an array allocates one): the group of
        # a single word; -2 - group for a plain multi-word term, whose gaps are checked inline; -1 for a punctuated
        # one (its forms in `_punctuated`).
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
        spans = normalized.original_spans(self.spans(normalized))
        return [(concept, s, e) for s, e, g in spans for concept in groups[g]]

    def spans(self, normalized: NormalizedText) -> list[tuple[int, int, int]]:
        """(start, end, group) in folded-text offsets: leftmost-longest over all valid whole-word hits.

        When the valid hits, taken in the order they come, each start at or after the end of the one before, they
        are in order and disjoint, so they are the selection as they stand; that is the usual case with a small
        dictionary, and it skips the sort.
        """
        # Both padded with a space, so that a term is at the same offsets in each: mapped[start : end - 1].
        mapped, folded = " " + normalized.mapped + " ", " " + normalized.folded
        found: list[tuple[int, int, int]] = []
        append = found.append
        direct = self._direct
        reached, disjoint = 0, True
        breaks: list[int] | None = None  # blank lines, in padded offsets; looked for at the first multi-word hit
        for entry, start, end in self._hits(mapped):
            if mapped[start - 1] != " ":
                continue  # inside a word (see scan.py: a hit brings its word boundary after, not before)
            group = direct[entry]
            if group < 0:  # a term of several words: the text's gaps must agree with the term's
                if breaks is None:
                    breaks = [at + 1 for at in normalized.paragraph_breaks()]
                group = self._gaps_agree(group, folded[start : end - 1], mapped[start : end - 1], breaks, start)
                if group < 0:
                    continue
            if start < reached:
                disjoint = False
            reached = end - 1
            append((start - 1, end - 2, group))
        return found if disjoint else _leftmost_longest(found)

    def _gaps_agree(self, group: int, text: str, term: str, breaks: list[int], start: int) -> int:
        """The group of a multi-word hit (`group` as `_direct` holds it) if the text's gaps agree with the term's;
        -1 if not, or if the hit spans a blank line (`breaks`, in the same offsets as `start`)."""
        if breaks:
            after = bisect_left(breaks, start)
            if after < len(breaks) and breaks[after] < start + len(text):
                return -1
        if group < -1:
            # Plain: its gaps are spaces; the text's may be spaces (the usual case) or hyphens.
            return -2 - group if text == term or text.translate(GAP_MAP) == term else -1
        # Punctuated ("t(9;22)"): the text's gaps must match one of its forms exactly.
        return self._punctuated[term].get(text.translate(GAP_MAP), -1)


def _leftmost_longest(found: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """From (start, end, group) hits: the leftmost, then the longest, then again after its end."""
    chosen: list[tuple[int, int, int]] = []
    reached = -1
    for start, negative_end, group in sorted([(start, -end, group) for start, end, group in found]):
        if start >= reached:
            reached = -negative_end
            chosen.append((start, reached, group))
    return chosen
