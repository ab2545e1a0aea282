"""Sentence indices for matches: spaCy's `blank("en")` + `sentencizer`, without running (or importing) spaCy.

Measured (bench/extract.py, bench/RESULTS.md): spaCy's tokenizer runs at a few MB/s, several times slower than the
automaton scan, and `import spacy` alone costs more CPU than scanning a 50 MB shard with 1k terms. The sentencizer's
rule, though, only looks at tokens in and right after chunks holding sentence punctuation, and spaCy tokenizes each
whitespace-delimited chunk on its own. So `SentenceSplitter` runs the sentencizer's exact state machine, asking a
tokenizer (cached per distinct chunk) only about the chunks that can end a sentence and those right after them.
By default that tokenizer is `ChunkTokenizer` over spaCy's exported rules (no spaCy import); given an `nlp`, it is
spaCy's own. The commonest boundary, "word. Next", is found by splitting the text on its marks, or, when it holds
marks beyond '.!?', by one regex over the reversed text (see `_starts`).
One rule is added to spaCy's, in both: a blank line ends a sentence (`with_paragraphs`).
Boundaries are checked against the full pipeline in tests/unit/extract/sentences/test_splitter.py;
`spacy_sentence_starts` is the full pipeline (`nlp.pipe`, batched), and `as_spans` gives spaCy `Span`s to callers
who want spaCy objects.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from corpusbridge.extract.sentences.chunk_tokenizer import ChunkTokenizer
from corpusbridge.extract.sentences.spacy_rules import tokenizer_rules

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span

PUNCT, OTHER_PUNCT, WORD = 0, 1, 2
_CACHE_LIMIT = 200_000
_WHITESPACE = re.compile(r"\s+")
_CHUNK = re.compile(r"\S+")
_PLAIN_WORD = re.compile(r"[a-z0-9]+")
_ASCII_BYTES = bytes(range(128))
_MARKS_TO_PERIOD = str.maketrans("!?", "..")
# Whitespace holding a blank line. The export joins title, abstract and body with one, and a title has no final
# period (sanitize drops it), so with spaCy's rule alone a title ran into the abstract's first sentence.
# Found from its line breaks (a literal the regex engine scans for), then widened to the whole run by hand: a pattern
# starting with \s* is tried at every space between two words (measured: twice the time of the splitter itself).
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")


class _Located(Protocol):
    start: int
    end: int
    concept_id: str


@lru_cache(maxsize=1)
def blank_pipeline() -> Language:
    """`spacy.blank("en")` with the rule-based sentencizer: needs no model download (imports spaCy)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def is_punct(text: str) -> bool:
    """spaCy's `is_punct` lexical attribute: every character is Unicode punctuation (category P*)."""
    return all(unicodedata.category(char).startswith("P") for char in text)


def _spacy_tokens(nlp: Language) -> tuple[Callable[[str], list[str]], list[str], set[str]]:
    tokenizer = nlp.tokenizer
    sentencizer: Any = nlp.get_pipe("sentencizer") if "sentencizer" in nlp.pipe_names else None
    punct = sentencizer.punct_chars if sentencizer is not None else tokenizer_rules().punct_chars
    return (lambda chunk: [t.text for t in tokenizer(chunk)]), list(punct), set(getattr(tokenizer, "rules", {}) or {})


def _trie_pattern(words: Iterable[str]) -> str:
    """A regex matching exactly `words`, factored by common prefixes: `re` tries alternatives one by one, and a
    flat alternation of a few hundred words would be tried at every plain mark."""
    tree: dict[str, dict] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node(tree)


def _trie_node(node: dict[str, dict]) -> str:
    branches = [re.escape(char) + _trie_node(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if "" in node else body  # a word may also end here


def _reverse_marks(marks: str, blocked_reversed: frozenset[str], plain: str) -> re.Pattern[str]:
    """The sentence marks `marks`, plus (the text being reversed) the word before a plain "word. Next" mark: mark,
    one space, a letter or digit, the word lower-case letters/digits and no special case."""
    every = re.escape(marks)
    if not plain:  # without the shortcuts (a foreign punctuation set) every mark takes the state machine
        return re.compile(f"[{every}]")
    blocked = f"(?!{_trie_pattern(blocked_reversed)}(?!\\S))" if blocked_reversed else ""
    return re.compile(rf"[{every}](?:(?<=[^\W_] [{plain}]){blocked}[a-z0-9]+(?!\S))?")


class SentenceSplitter:
    """The sentencizer's boundaries at near string-scan speed (see module docstring)."""

    def __init__(self, nlp: Language | None = None) -> None:
        if nlp is None:
            rules = tokenizer_rules()
            self._tokenize: Callable[[str], list[str]] = ChunkTokenizer(rules)
            punct, special = list(rules.punct_chars), set(rules.special_cases)
        else:
            self._tokenize, punct, special = _spacy_tokens(nlp)
        self._punct = frozenset(punct)
        self._ascii_punct = "".join(sorted(c for c in self._punct if c.isascii()))
        self._outcomes: dict[str, tuple[tuple[tuple[int, ...], bool], tuple[tuple[int, ...], bool]]] = {}
        # Shortcuts that skip the tokenizer for the two commonest cases (both pinned by the agreement test):
        # "word." (lower-case/digits + one sentence mark, neither it nor "word" a special case) splits into word +
        # mark, and a chunk starting with a letter or digit always starts with a WORD token (is_punct needs all-P
        # chars).
        self._special = frozenset(special)
        self._letters_start_words = not any(c.isalnum() for c in self._punct)
        marks = re.escape(self._ascii_punct)
        self._plain_end = re.compile(rf"[a-z0-9]+[{marks}]") if marks else None
        # "word." is no plain end when "word" or "word" + a mark is a special case ("hes." is "he" + "s.").
        blocked = {s for s in special if _PLAIN_WORD.fullmatch(s)}
        blocked |= {s[:-1] for s in special if s[-1:] in self._punct and _PLAIN_WORD.fullmatch(s[:-1])}
        self._plain = marks if self._letters_start_words else ""
        self._blocked_reversed = frozenset(word[::-1] for word in blocked)
        self._blocked = frozenset(blocked)
        self._splits_on_marks = bool(self._plain) and set(self._ascii_punct) == {".", "!", "?"}
        self._searches: dict[frozenset[str], re.Pattern[str]] = {}

    def starts(self, text: str) -> list[int]:
        """Character offsets where the 2nd, 3rd, ... sentence begins."""
        return with_paragraphs(text, self._starts(text, len(text) - 1))

    def indices(self, text: str, offsets: Sequence[int]) -> list[int]:
        """Sentence index of each character offset (boundaries after the last offset are not looked for)."""
        if not offsets:
            return []
        starts = with_paragraphs(text, self._starts(text, max(offsets)))
        return [bisect_right(starts, offset) for offset in offsets]

    def _starts(self, text: str, last: int) -> list[int]:
        """Sentence starts from every mark at or before `last`.

        A plain "word. Next" mark is a boundary two characters on, whatever came before (a plain chunk always starts
        with a letter, so no pending period can run into it), and only the other marks go through the state
        machine, in text order. Plain marks are told apart by `_split_at_marks`, or, for text with marks beyond
        '.!?', by one C-speed regex over the reversed text, whose fast search starts at the mark and can then look
        at the word before it.
        """
        if last < 0:
            return []
        top = min(len(text) - 1, last + 2)
        split = self._split_at_marks(text, top)
        if split is not None:
            plain, others = split
        else:
            # (start, end) in the reversed text; a plain mark's match also holds its word, so it is longer than 1.
            spans = [match.span() for match in self._reverse_search(text).finditer(text[top::-1])]
            plain = [top + 2 - start for start, end in reversed(spans) if end - start > 1]
            others = [top - start for start, end in reversed(spans) if end - start == 1]
        if not others:
            return plain
        starts = self._machine(text, others)
        return sorted(plain + starts) if plain else starts

    def _split_at_marks(self, text: str, top: int) -> tuple[list[int], list[int]] | None:
        """(starts of the plain "word. Next" boundaries, positions of the other marks) in text[:top + 1], by
        `str.split` on the marks: a third less time than the regex, which pays ~0.25 us at every mark (measured on
        the benchmark corpus, same results). None when the text holds marks beyond '.!?' (the regex handles them).

        A mark is taken as plain only when that is certain (the word is inside its piece, lower-case letters or
        digits, no special case; one space, then a letter or digit); anything else goes to the state machine,
        which places every mark exactly, so a doubtful case costs time, never a wrong boundary.
        """
        if not self._splits_on_marks:
            return None
        segment = text[: top + 1]
        if self._other_marks(segment):
            return None
        if "!" in segment or "?" in segment:
            segment = segment.translate(_MARKS_TO_PERIOD)
        pieces = segment.split(".")
        plain: list[int] = []
        others: list[int] = []
        blocked = self._blocked
        mark = -1
        previous = pieces[0]
        for number, following in enumerate(pieces[1:]):
            mark += len(previous) + 1
            _, space, word = previous.rpartition(" ")
            if (
                following[1:2].isalnum()
                and following[:1] == " "
                and (space or number == 0)
                and word.isalnum()
                and word.isascii()
                and word == word.lower()
                and word not in blocked
            ):
                plain.append(mark + 2)
            else:
                others.append(mark)
            previous = following
        return plain, others

    def _machine(self, text: str, marks: list[int]) -> list[int]:
        """Sentence starts from the marks at `marks` (ascending) that are not plain, by the sentencizer's rules."""
        starts: list[int] = []
        done = 0
        for position in marks:
            if position < done:
                continue
            while position > done and not text[position - 1].isspace():
                position -= 1
            done, seen = self._first_chunk(text, position, starts)
            while seen and done < len(text):
                done, seen = self._resume(text, done, starts)
        return starts

    def _other_marks(self, text: str) -> frozenset[str]:
        """The sentence marks in `text` that are not ASCII ('。', '؟', ...); deleting the ASCII bytes leaves only the
        other characters, much cheaper than a regex over the text."""
        if text.isascii():
            return frozenset()
        return frozenset(text.encode("utf-8").translate(None, _ASCII_BYTES).decode("utf-8")) & self._punct

    def _reverse_search(self, text: str) -> re.Pattern[str]:
        """A pattern for the marks this text can hold: a small character class up front is what keeps `re` on its
        fast search (measured: the class of all ~130 marks makes the scan ~10x slower)."""
        extra = self._other_marks(text)
        pattern = self._searches.get(extra)
        if pattern is None:
            marks = self._ascii_punct + "".join(sorted(extra))
            pattern = self._searches[extra] = _reverse_marks(marks, self._blocked_reversed, self._plain)
        return pattern

    def _outcome(self, chunk: str) -> tuple[tuple[tuple[int, ...], bool], tuple[tuple[int, ...], bool]]:
        """The sentencizer's loop over one chunk's tokens, for both incoming states: (start offsets, period
        pending after the chunk). Cached per distinct chunk, which is what makes the splitter cheap."""
        outcome = self._outcomes.get(chunk)
        if outcome is None:
            if len(self._outcomes) > _CACHE_LIMIT:
                self._outcomes.clear()
            texts = self._tokenize(chunk)
            kinds = [PUNCT if t in self._punct else OTHER_PUNCT if is_punct(t) else WORD for t in texts]
            offsets = [0] * len(texts)
            for index in range(1, len(texts)):  # a chunk has no spaces: its tokens spell it out
                offsets[index] = offsets[index - 1] + len(texts[index - 1])
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


def with_paragraphs(text: str, starts: list[int]) -> list[int]:
    """`starts` (spaCy's sentence starts) plus the first character after each blank line that spaCy does not
    already start a sentence at or before (its whitespace token may start one)."""
    extra: list[int] = []
    size, reached = len(text), 0
    for blank in _BLANK_LINE.finditer(text):
        first, after = blank.span()
        if after <= reached:
            continue  # the rest of a run already seen ("\n\n\n\n")
        while first > 0 and text[first - 1].isspace():
            first -= 1
        while after < size and text[after].isspace():
            after += 1
        reached = after
        if first == 0 or after == size:
            continue  # leading or trailing whitespace: no sentence on one side
        near = bisect_left(starts, first)
        if near == len(starts) or starts[near] > after:
            extra.append(after)
    return sorted(starts + extra) if extra else starts


def spacy_sentence_starts(
    texts: Iterable[str], nlp: Language | None = None, batch_size: int = 256
) -> Iterator[list[int]]:
    """The reference: the full spaCy pipeline over each text (`nlp.pipe`, batched), plus the blank-line rule."""
    nlp = nlp or blank_pipeline()
    for doc in nlp.pipe(texts, batch_size=batch_size):
        yield with_paragraphs(doc.text, [sent.start_char for sent in doc.sents][1:])


def as_spans(doc: Doc, matches: Iterable[_Located]) -> list[Span]:
    """spaCy `Span`s for matches (label = concept id), expanded to whole tokens when a match splits one."""
    spans = []
    for match in matches:
        span = doc.char_span(match.start, match.end, label=match.concept_id, alignment_mode="expand")
        if span is not None:
            spans.append(span)
    return spans
