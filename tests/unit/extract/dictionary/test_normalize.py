"""One normalization for terms and text, and the way back to original offsets."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

from corpusbridge.extract.dictionary.normalize import (
    WORD_MAP,
    _simple_fold,
    fold,
    normalize_term,
    normalize_text,
    term_variants,
)

CORPORA = Path(__file__).resolve().parents[3] / "fixtures" / "corpora"


def test_ascii_text_folds_one_to_one() -> None:
    normalized = normalize_text("Lung\tCancer")
    assert normalized.folded == "lung cancer"
    assert normalized.original_span(5, 11) == (5, 11)


def test_whitespace_runs_collapse_with_offsets_kept() -> None:
    text = "a  \n b"
    normalized = normalize_text(text)
    assert normalized.folded == "a b"
    start, end = normalized.original_span(2, 3)
    assert text[start:end] == "b"


def test_expansions_map_back_to_whole_original_characters() -> None:
    text = "Maß ﬁx"
    normalized = normalize_text(text)
    assert normalized.folded == "mass fix"
    assert normalized.original_span(0, 4) == (0, 3)
    # 'f' alone is half of the ligature: the span snaps out to the whole original character.
    assert normalized.original_span(5, 6) == (4, 5)


def test_combining_sequences_fold_like_precomposed_ones() -> None:
    assert normalize_text("Cafe\u0301").folded == normalize_text("Café").folded == "café"
    assert normalize_term("CAFE\u0301") == "café"


def test_general_path_agrees_with_fast_path_on_ascii() -> None:
    rng = random.Random(3)
    alphabet = "abcXYZ -.,()\t"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))).replace("  ", " ").replace("\t\t", "\t")
        fast = normalize_text(text)
        general = normalize_text(text + "ß")
        assert general.folded == fast.folded + "ss"


def test_terms_are_trimmed_to_words_and_whitespace_collapsed() -> None:
    assert normalize_term("  (Lung   Cancer). ") == "lung cancer"
    assert normalize_term("---") == ""
    assert term_variants("Non-Small cell", hyphens=True) == ["non-small cell", "nonsmall cell"]
    assert term_variants("biopsy", plurals=True) == ["biopsy", "biopsies"]


def test_fast_path_and_general_path_agree_on_non_ascii_text() -> None:
    from corpusbridge.extract.dictionary.normalize import _fold_mapped

    rng = random.Random(5)
    alphabet = "abZ -.,é É α Ω ‘’–—Ⅻ½ﬁßİ\u00a0\u0301\t\n"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        fast, general = normalize_text(text), _fold_mapped(text)
        assert (fast.mapped, fast.folded) == (general.mapped, general.folded), repr(text)


# The per-character general path as it was before whitespace runs got their own map (extract/dictionary/normalize.py
# at 2f5f125), kept verbatim as the reference every faster path must reproduce: same folded and mapped text, same
# original span for every folded character, so the same concepts-I.parquet bytes.
def _reference_segments(text: str) -> list[tuple[int, int]]:
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


def _reference(text: str) -> tuple[str, str, list[int], list[int]]:
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, j in _reference_segments(text):
        piece = " " if text[i].isspace() else fold(text[i:j])
        pieces.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
    folded = "".join(pieces)
    return folded.translate(WORD_MAP), folded, starts, ends


def _assert_same_as_reference(text: str, rng: random.Random) -> None:
    mapped, folded, starts, ends = _reference(text)
    new = normalize_text(text)
    assert (new.mapped, new.folded) == (mapped, folded), repr(text)
    if new.starts is None:  # 1:1: the reference's map is the identity then
        assert (starts, ends) == (list(range(len(text))), list(range(1, len(text) + 1))), repr(text)
        return
    assert (new.starts, new.ends) == (starts, ends), repr(text)
    spans = sorted((s, e, n) for n, (s, e) in enumerate(_random_spans(len(folded), rng)))
    expected = [(starts[s], ends[e - 1], n) for s, e, n in spans]
    assert new.original_spans(spans) == expected, repr(text)
    assert [new.original_span(s, e) for s, e, _ in spans] == [(s, e) for s, e, _ in expected], repr(text)


def _random_spans(length: int, rng: random.Random) -> list[tuple[int, int]]:
    if not length:
        return []
    spans = [(0, length), (length - 1, length)]
    for _ in range(10):
        start = rng.randrange(length)
        spans.append((start, rng.randint(start + 1, length)))
    return spans


_WHITESPACE = " \t\n\r\r\n\u00a0\u2003\u3000\u0085\u2028\x1c\x0b\x0c"
_ALPHABETS = [
    "ab Z.,-()  \t\n\r",  # ASCII with runs of every kind (CRLF, tabs)
    "ab Z.,-" + _WHITESPACE,  # unicode whitespace beside ASCII whitespace
    "abZ -.,é É α Ω ‘’–—Ⅻ½ﬁßİ\u00a0\u0301\u0308\t\n\r",  # expansions and combining marks: the general path
    "aé Ω\u00a0\u2003\u3000\n\t\u0085",  # one-to-one non-ASCII folds with unicode runs
    "x\u0301 \n",  # combining marks after letters and after whitespace
]


def test_every_path_agrees_with_the_per_character_reference_on_random_text() -> None:
    rng = random.Random(12)
    for _ in range(4000):
        alphabet = rng.choice(_ALPHABETS)
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        _assert_same_as_reference(text, rng)


def test_leading_trailing_and_whole_whitespace_runs_agree_with_the_reference() -> None:
    rng = random.Random(1)
    for text in ["", " ", "  ", "\r\n", " \u00a0 ", "  a", "a  ", "\n\na\n\n", "\t a \t", "a\u3000\u3000b", "ß  a",
                 "a \u0301", "  \u0301", "A\n\nB\n\nC", "é\n\n", "\n\né", "x" * 50 + "\n\n" + "y" * 50]:  # fmt: skip
        _assert_same_as_reference(text, rng)


def test_exported_texts_of_the_real_samples_agree_with_the_reference() -> None:
    """Title, abstract and body of every fixture record, sanitized and joined with a blank line as the export
    joins them (`concat_ws(E'\\n\\n', ...)`), and also with the CRLF and NBSP a careless source gives."""
    rng = random.Random(7)
    texts = _exported_fixture_texts()
    assert len(texts) >= 20
    for text in texts:
        for variant in (text, text.replace("\n", "\r\n"), text.replace(" ", "\u00a0", 5), text + "  \n"):
            _assert_same_as_reference(variant, rng)


def test_whitespace_folds_to_a_space_exactly_where_the_character_is_whitespace() -> None:
    """What the fast path relies on to find runs in its 1:1 folded text, over all of Unicode."""
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        single = _simple_fold(chr(code))
        if single is not None:
            assert (single == " ") == chr(code).isspace(), hex(code)


def _exported_fixture_texts() -> list[str]:
    from corpusbridge.ingest.parse import FileParse, parse_file
    from corpusbridge.ingest.records import Record
    from corpusbridge.sanitize.records import CleanRecord, RawDocument, sanitize_record

    texts = []
    for path in sorted(CORPORA.rglob("*")):
        if not path.is_file() or path.suffix == ".md":
            continue
        for item in parse_file(path, FileParse()):
            if not isinstance(item, Record):
                continue
            raw = RawDocument(item.doc_id, item.source_format, item.title, item.abstract, item.full_text,
                              item.authors, item.year, item.venue, item.language, item.raw, 0)  # fmt: skip
            clean = sanitize_record(raw)
            if isinstance(clean, CleanRecord):
                parts = [p for p in (clean.title, clean.abstract, clean.full_text) if p]
                if parts:
                    texts.append("\n\n".join(parts))
    return texts
