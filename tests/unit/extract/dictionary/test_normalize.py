"""One normalization for terms and text, and the way back to original offsets."""

from __future__ import annotations

import random

from corpusbridge.extract.dictionary.normalize import normalize_term, normalize_text, term_variants


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
