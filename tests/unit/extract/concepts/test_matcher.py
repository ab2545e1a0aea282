"""The matching semantics users rely on: whole words, leftmost-longest, non-overlapping, original offsets."""

from __future__ import annotations

import pytest

from corpusbridge.extract.concepts.matcher import Matcher

TERMS = {
    "lung": "C_LUNG",
    "lung cancer": "C_LC",
    "small cell lung cancer": "C_SCLC",
    "cell": "C_CELL",
    "cell line": "C_CELL_LINE",
    "IL-6": "C_IL6",
    "t(9;22)": "C_T922",
    "Straße": "C_STRASSE",
    "file": "C_FILE",
    "café": "C_CAFE",
    "α-synuclein": "C_ASYN",
}


def found(matcher: Matcher, text: str) -> list[tuple[str, int, int, str]]:
    return [(m.concept_id, m.start, m.end, m.matched) for m in matcher.find(text)]


@pytest.fixture
def matcher(make_matcher) -> Matcher:
    return make_matcher(TERMS)


def test_longest_of_overlapping_terms_wins(matcher: Matcher) -> None:
    text = "Small cell lung cancer, lung cancer and lung."
    assert found(matcher, text) == [
        ("C_SCLC", 0, 22, "Small cell lung cancer"),
        ("C_LC", 24, 35, "lung cancer"),
        ("C_LUNG", 40, 44, "lung"),
    ]


def test_longest_failing_the_boundary_falls_back_to_the_longest_that_passes(matcher: Matcher) -> None:
    assert found(matcher, "lung cancers") == [("C_LUNG", 0, 4, "lung")]


def test_cell_line_inside_cell_lines_still_finds_cell(matcher: Matcher) -> None:
    assert found(matcher, "HeLa cell lines") == [("C_CELL", 5, 9, "cell")]


def test_terms_inside_words_are_not_matches(matcher: Matcher) -> None:
    assert found(matcher, "lungs cellular filesystem excellent sublung") == []


def test_punctuation_is_a_boundary_but_not_a_gap_inside_a_term(matcher: Matcher) -> None:
    assert found(matcher, "(lung), cell. lung, cancer") == [
        ("C_LUNG", 1, 5, "lung"),
        ("C_CELL", 8, 12, "cell"),
        ("C_LUNG", 14, 18, "lung"),
    ]


def test_hyphen_and_whitespace_runs_join_words_like_a_space(matcher: Matcher) -> None:
    assert found(matcher, "lung-cancer lung \n cancer") == [
        ("C_LC", 0, 11, "lung-cancer"),
        ("C_LC", 12, 25, "lung \n cancer"),
    ]


@pytest.mark.parametrize("blank", ["\n\n", "\n \n", " \r\n\r\n\t"])
@pytest.mark.parametrize("fold", ["ascii", "non-ascii", "general"])
def test_a_blank_line_ends_every_term(matcher: Matcher, blank: str, fold: str) -> None:
    """The export joins title and abstract with a blank line: a title ending in "small cell lung" and an abstract
    starting "Cancer" hold no lung cancer, but the words on each side still match alone."""
    before = {"ascii": "On small cell lung", "non-ascii": "Café small cell lung", "general": "Straße small cell lung"}
    title = before[fold]
    text = f"{title}{blank}Cancer screening in cell lines. Lung cancer."
    after = len(title) + len(blank)
    assert found(matcher, text)[-4:] == [
        ("C_CELL", len(title) - 9, len(title) - 5, "cell"),
        ("C_LUNG", len(title) - 4, len(title), "lung"),
        ("C_CELL", after + 20, after + 24, "cell"),
        ("C_LC", after + 32, after + 43, "Lung cancer"),
    ]


def test_hyphenated_term_matches_spaced_form_and_keeps_its_own_punctuation(matcher: Matcher) -> None:
    assert found(matcher, "IL-6, il 6, IL6, t(9;22), t 9 22") == [
        ("C_IL6", 0, 4, "IL-6"),
        ("C_IL6", 6, 10, "il 6"),
        ("C_T922", 17, 23, "t(9;22"),
    ]


def test_non_ascii_terms_and_length_changing_case_folds_report_original_offsets(matcher: Matcher) -> None:
    text = "ẞ STRASSE, Straße; ﬁle CAFÉ cafe\u0301 α-Synuclein"
    hits = found(matcher, text)
    assert hits == [
        ("C_STRASSE", 2, 9, "STRASSE"),
        ("C_STRASSE", 11, 17, "Straße"),
        ("C_FILE", 19, 22, "ﬁle"),
        ("C_CAFE", 23, 27, "CAFÉ"),
        ("C_CAFE", 28, 33, "cafe\u0301"),
        ("C_ASYN", 34, 45, "α-Synuclein"),
    ]
    assert all(text[start:end] == matched for _, start, end, matched in hits)


def test_offsets_after_a_length_changing_fold_earlier_in_the_text(matcher: Matcher) -> None:
    text = "ßßß ﬁﬁ lung"
    assert found(matcher, text) == [("C_LUNG", 7, 11, "lung")]


def test_terms_at_text_start_and_end_and_repeated(matcher: Matcher) -> None:
    assert [h[1:3] for h in found(matcher, "cell cell cell")] == [(0, 4), (5, 9), (10, 14)]
    assert found(matcher, "lung") == [("C_LUNG", 0, 4, "lung")]


def test_empty_and_matchless_text(matcher: Matcher) -> None:
    assert found(matcher, "") == []
    assert found(matcher, "   \n ") == []
    assert found(matcher, "nothing to see here") == []


def test_ambiguous_term_gives_one_row_per_concept_on_the_same_span(make_matcher) -> None:
    matcher = make_matcher([("cold", "C_TEMPERATURE"), ("Cold", "C_INFECTION")])
    assert found(matcher, "a cold") == [("C_INFECTION", 2, 6, "cold"), ("C_TEMPERATURE", 2, 6, "cold")]


def test_hyphen_and_plural_variants_are_opt_in(make_matcher) -> None:
    plain = make_matcher({"non-small cell": "C_NSC", "biopsy": "C_BIOPSY"})
    variants = make_matcher(
        {"non-small cell": "C_NSC", "biopsy": "C_BIOPSY"}, hyphen_variants=True, plural_variants=True
    )
    text = "nonsmall cell biopsies"
    assert found(plain, text) == []
    assert found(variants, text) == [("C_NSC", 0, 13, "nonsmall cell"), ("C_BIOPSY", 14, 22, "biopsies")]


def test_matches_never_overlap_and_are_ordered(make_matcher) -> None:
    matcher = make_matcher({"a b": "AB", "b c": "BC", "c d": "CD", "b": "B"})
    assert found(matcher, "a b c d") == [("AB", 0, 3, "a b"), ("CD", 4, 7, "c d")]
