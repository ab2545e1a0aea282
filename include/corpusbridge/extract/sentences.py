"""Sentence indices for matches: spaCy's `blank("en")` + `sentencizer`, without running spaCy over every word.

Measured (bench/extract.py, bench/RESULTS.md): spaCy's tokenizer runs at a few MB/s, several times slower than the
automaton scan, so it cannot sit on the hot path. The sentencizer's rule, though, only looks at tokens in and right
after chunks holding sentence punctuation, and spaCy tokenizes each whitespace-delimited chunk on its own. So
`SentenceSplitter` runs the sentencizer's exact state machine, asking spaCy's own tokenizer (cached per distinct
chunk) only about the chunks that can end a sentence and those right after them. Its boundaries are checked against
the full pipeline in tests/unit/extract/test_sentences.py; `spacy_sentence_starts` is the full pipeline
(`nlp.pipe`, batched), and `as_spans` gives spaCy `Span`s to callers who want spaCy objects.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import spacy
from spacy.pipeline import Sentencizer

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

PUNCT, OTHER_PUNCT, WORD = 0, 1, 2
_CACHE_LIMIT = 200_000
_WHITESPACE = re.compile(r"\s+")
_CHUNK = re.compile(r"\S+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class _Located(Protocol):
    start: int
    end: int
    concept_id: str


@lru_cache(maxsize=1)
def blank_pipeline() -> Language:
    """`spacy.blank("en")` with the rule-based sentencizer: needs no model download."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


class SentenceSplitter:
    """The sentencizer's boundaries at near string-scan speed (see module docstring)."""

    def __init__(self, nlp: Language | None = None) -> None:
        nlp = nlp or blank_pipeline()
        self._tokenizer = nlp.tokenizer
        sentencizer: Any = nlp.get_pipe("sentencizer") if "sentencizer" in nlp.pipe_names else Sentencizer(nlp.vocab)
        self._punct = frozenset(sentencizer.punct_chars)
        self._ascii_punct = "".join(sorted(c for c in self._punct if c.isascii()))
        self._outcomes: dict[str, tuple[tuple[tuple[int, ...], bool], tuple[tuple[int, ...], bool]]] = {}
        self._searches: dict[frozenset[str], re.Pattern[str]] = {}
        # Shortcuts that skip the tokenizer for the two commonest cases (both pinned by the agreement test):
        # "word." (lower-case/digits + one sentence mark, neither it nor "word" a special case) splits into word +
        # mark, and a chunk starting with a letter or digit always starts with a WORD token (is_punct needs all-P
        # chars).
        self._special = frozenset(getattr(self._tokenizer, "rules", None) or {})
        self._letters_start_words = not any(c.isalnum() for c in self._punct)
        marks = re.escape(self._ascii_punct)
        self._plain_end = re.compile(rf"[a-z0-9]+[{marks}]") if marks else None

    def starts(self, text: str) -> list[int]:
        """Character offsets where the 2nd, 3rd, ... sentence begins."""
        starts: list[int] = []
        done = 0
        for found in self._punct_search(text).finditer(text):
            position = found.start()
            if position < done:
                continue
            while position > done and not text[position - 1].isspace():
                position -= 1
            done, seen = self._first_chunk(text, position, starts)
            while seen and done < len(text):
                done, seen = self._resume(text, done, starts)
        return starts

    def _punct_search(self, text: str) -> re.Pattern[str]:
        """A pattern for the sentence punctuation this text can hold: a small class is what keeps `re` fast."""
        extra = frozenset() if text.isascii() else frozenset(_NON_ASCII.findall(text)) & self._punct
        pattern = self._searches.get(extra)
        if pattern is None:
            pattern = re.compile("[" + re.escape(self._ascii_punct + "".join(sorted(extra))) + "]")
            self._searches[extra] = pattern
        return pattern

    def indices(self, text: str, offsets: Sequence[int]) -> list[int]:
        """Sentence index of each character offset."""
        if not offsets:
            return []
        starts = self.starts(text)
        return [bisect_right(starts, offset) for offset in offsets]

    def _outcome(self, chunk: str) -> tuple[tuple[tuple[int, ...], bool], tuple[tuple[int, ...], bool]]:
        """The sentencizer's loop over one chunk's tokens, for both incoming states: (start offsets, period
        pending after the chunk). Cached per distinct chunk, which is what makes the splitter cheap."""
        outcome = self._outcomes.get(chunk)
        if outcome is None:
            if len(self._outcomes) > _CACHE_LIMIT:
                self._outcomes.clear()
            tokens = self._tokenizer(chunk)
            kinds = [PUNCT if t.text in self._punct else OTHER_PUNCT if t.is_punct else WORD for t in tokens]
            offsets = [t.idx for t in tokens]
            outcome = (self._loop(kinds, offsets, False), self._loop(kinds, offsets, True))
            self._outcomes[chunk] = outcome
        return outcome

    @staticmethod
    def _loop(kinds: list[int], offsets: list[int], seen: bool) -> tuple[tuple[int, ...], bool]:
        found = []
        for kind, offset in zip(kinds, offsets, strict=True):
            if seen and kind == WORD:
                found.append(offset)
                seen = False
            elif kind == PUNCT:
                seen = True
        return tuple(found), seen

    def _first_chunk(self, text: str, position: int, starts: list[int]) -> tuple[int, bool]:
        """A chunk holding sentence punctuation, reached with no period pending."""
        chunk = _CHUNK.match(text, position)
        if chunk is None:
            return len(text), False
        word = chunk.group()
        if (
            self._plain_end is not None
            and self._plain_end.fullmatch(word)
            and word not in self._special
            and word[:-1] not in self._special  # "hes." is "he" + "s." (special case "hes")
        ):
            return chunk.end(), True
        offsets, pending = self._outcome(word)[False]
        starts.extend(position + offset for offset in offsets)
        return chunk.end(), pending

    def _chunk(self, text: str, position: int, seen: bool, starts: list[int]) -> tuple[int, bool]:
        """Apply the chunk starting at `position`; returns where it ends and whether a period is pending."""
        chunk = _CHUNK.match(text, position)
        if chunk is None:
            return len(text), False
        offsets, pending = self._outcome(chunk.group())[seen]
        starts.extend(position + offset for offset in offsets)
        return chunk.end(), pending

    def _resume(self, text: str, position: int, starts: list[int]) -> tuple[int, bool]:
        """After a pending period: the whitespace run, then the next chunk, as spaCy's tokenizer sees them."""
        space = _WHITESPACE.match(text, position)
        if space:
            # spaCy attaches ONE following ' ' to the previous token; any other whitespace is a token of its own.
            token_start = position + 1 if text[position] == " " else position
            if token_start < space.end():
                starts.append(token_start)
                return space.end(), False
            position = space.end()
        if self._letters_start_words and position < len(text) and text[position].isalnum():
            starts.append(position)
            return position, False
        return self._chunk(text, position, True, starts)


def spacy_sentence_starts(
    texts: Iterable[str], nlp: Language | None = None, batch_size: int = 256
) -> Iterator[list[int]]:
    """The reference: the full spaCy pipeline over each text (`nlp.pipe`, batched)."""
    nlp = nlp or blank_pipeline()
    for doc in nlp.pipe(texts, batch_size=batch_size):
        yield [sent.start_char for sent in doc.sents][1:]


def as_spans(doc: Doc, matches: Iterable[_Located]) -> list[Span]:
    """spaCy `Span`s for matches (label = concept id), expanded to whole tokens when a match splits one."""
    spans = []
    for match in matches:
        span = doc.char_span(match.start, match.end, label=match.concept_id, alignment_mode="expand")
        if span is not None:
            spans.append(span)
    return spans
