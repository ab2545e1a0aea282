"""spaCy's tokenizer algorithm for one whitespace-free chunk, in plain Python over exported rules (no spaCy import).

It follows spaCy 3's `Tokenizer.__call__` for a single chunk: special cases, then prefixes and suffixes peeled off
alternately (`_split_affixes`), then URL match, special case or infix split of what is left (`_attach_tokens`), then
the special-case matcher over the chunk's tokens (`_apply_special_cases`: longest match first). spaCy tokenizes
each chunk on its own (its special-case matcher skips a match whose text, spanning chunks, holds whitespace the
special case does not), so this gives the same tokens as `nlp.tokenizer(text)` for every chunk of `text`;
tests/unit/extract/sentences/test_chunk_tokenizer.py checks that against spaCy.
"""

from __future__ import annotations

import re

from corpusbridge.extract.sentences.spacy_rules import Pattern, TokenizerRules


def _compiled(pattern: Pattern | None) -> re.Pattern[str] | None:
    return re.compile(pattern.pattern, pattern.flags) if pattern is not None else None


class ChunkTokenizer:
    """Token texts of one chunk, as spaCy's tokenizer with the given rules would produce them."""

    def __init__(self, rules: TokenizerRules) -> None:
        self._specials = {chunk: tuple(tokens) for chunk, tokens in rules.special_cases.items()}
        self._prefix = _compiled(rules.prefix)
        self._suffix = _compiled(rules.suffix)
        self._infix = _compiled(rules.infix)
        self._token_match = _compiled(rules.token_match)
        self._url_match = _compiled(rules.url_match)
        self._phrases = self._special_phrases(rules.faster_heuristics)
        self._longest_phrase = max((len(p) for p in self._phrases), default=0)

    def __call__(self, chunk: str) -> list[str]:
        tokens = self._affix_tokens(chunk, True)
        return self._apply_phrases(tokens) if self._phrases else tokens

    # --- affixes ---------------------------------------------------------------------------------------------------

    def _find_prefix(self, text: str) -> int:
        found = self._prefix.search(text) if self._prefix is not None else None
        return found.end() - found.start() if found is not None else 0

    def _find_suffix(self, text: str) -> int:
        found = self._suffix.search(text) if self._suffix is not None else None
        return found.end() - found.start() if found is not None else 0

    def _is_special(self, text: str, with_specials: bool) -> bool:
        return with_specials and text in self._specials

    def _affix_tokens(self, chunk: str, with_specials: bool) -> list[str]:
        if self._is_special(chunk, with_specials):
            return list(self._specials[chunk])
        prefixes: list[str] = []
        suffixes: list[str] = []
        core = self._split_affixes(chunk, prefixes, suffixes, with_specials)
        return prefixes + self._core_tokens(core, with_specials) + suffixes[::-1]

    def _split_affixes(self, text: str, prefixes: list[str], suffixes: list[str], with_specials: bool) -> str:
        """Peel prefixes and suffixes until none is left or the rest is a special case (spaCy's order of checks)."""
        last_size = 0
        while text and len(text) != last_size:
            if self._matches(self._token_match, text) or self._is_special(text, with_specials):
                break
            last_size = len(text)
            pre_len = self._find_prefix(text)
            if pre_len and self._is_special(text[pre_len:], with_specials) and text[pre_len:]:
                prefixes.append(text[:pre_len])
                return text[pre_len:]
            suf_len = self._find_suffix(text[pre_len:])
            if suf_len and text[:-suf_len] and self._is_special(text[:-suf_len], with_specials):
                suffixes.append(text[-suf_len:])
                return text[:-suf_len]
            if pre_len and suf_len and pre_len + suf_len <= len(text):
                prefixes.append(text[:pre_len])
                suffixes.append(text[-suf_len:])
                text = text[pre_len:-suf_len]
            elif pre_len:
                prefixes.append(text[:pre_len])
                text = text[pre_len:]
            elif suf_len:
                suffixes.append(text[-suf_len:])
                text = text[:-suf_len]
        return text

    @staticmethod
    def _matches(pattern: re.Pattern[str] | None, text: str) -> bool:
        return pattern is not None and pattern.match(text) is not None

    def _core_tokens(self, text: str, with_specials: bool) -> list[str]:
        """What is left after the affixes: a special case, one URL-like token, or pieces split at infixes."""
        if not text:
            return []
        if self._is_special(text, with_specials):
            return list(self._specials[text])
        if self._matches(self._token_match, text) or self._matches(self._url_match, text):
            return [text]
        infixes = list(self._infix.finditer(text)) if self._infix is not None else []
        if not infixes:
            return [text]
        tokens: list[str] = []
        start = 0
        for infix in infixes:
            if infix.start() == 0:  # an infix at the very start never splits
                continue
            if infix.start() != start:
                tokens.append(text[start : infix.start()])
            if infix.start() != infix.end():
                tokens.append(text[infix.start() : infix.end()])
            start = infix.end()
        if text[start:]:
            tokens.append(text[start:])
        return tokens

    # --- special cases that span tokens ----------------------------------------------------------------------------

    def _special_phrases(self, faster_heuristics: bool) -> dict[tuple[str, ...], str]:
        """Special cases as spaCy's special-case matcher sees them: their own affix tokenization -> the chunk."""
        phrases: dict[tuple[str, ...], str] = {}
        for chunk in self._specials:
            has_affix = self._find_prefix(chunk) or self._find_suffix(chunk) or self._has_infix(chunk) or " " in chunk
            if has_affix or not faster_heuristics:
                phrases.setdefault(tuple(self._affix_tokens(chunk, False)), chunk)
        return phrases

    def _has_infix(self, text: str) -> bool:
        return self._infix is not None and self._infix.search(text) is not None

    def _apply_phrases(self, tokens: list[str]) -> list[str]:
        """Replace token runs that spell a special case, longest first, then leftmost (spaCy's filter)."""
        found = [
            (end - start, start, end)
            for start in range(len(tokens))
            for end in range(start + 1, min(len(tokens), start + self._longest_phrase) + 1)
            if tuple(tokens[start:end]) in self._phrases
        ]
        if not found:
            return tokens
        found.sort(key=lambda f: (-f[0], f[1]))
        seen: set[int] = set()
        kept: dict[int, int] = {}
        for _, start, end in found:
            if start not in seen and end - 1 not in seen:
                kept[start] = end
            seen.update(range(start, end))
        result: list[str] = []
        index = 0
        while index < len(tokens):
            end = kept.get(index, 0)
            if end:
                result.extend(self._specials[self._phrases[tuple(tokens[index:end])]])
                index = end
            else:
                result.append(tokens[index])
                index += 1
        return result
