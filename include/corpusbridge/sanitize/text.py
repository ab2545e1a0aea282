"""Pure `str -> str` cleaning steps for scholarly text, and the fixed order they run in.

Each step does one thing so it can be tested alone. The order matters: markup is stripped *before* entities
are decoded, so an escaped `P &lt; 0.05` stays text instead of being eaten as a tag.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping, Sequence

PARAGRAPH = "\n\n"

# Elements that end a paragraph or a sentence-sized unit; everything else is inline and vanishes.
_BLOCK_TAG_NAMES = (
    "p sec title abstract abstracttext trans-abstract div br hr li list list-item tr td th table table-wrap caption "
    "fig fig-group label disp-formula disp-quote def-item def-list h1 h2 h3 h4 h5 h6 blockquote pre body front back "
    "article-title subtitle boxed-text statement ref"
)
_BLOCK_TAGS = frozenset(_BLOCK_TAG_NAMES.split())
# Emphasis that sources glue to the words around it (`the<i>TERT</i>gene`): it separates words.
_EMPHASIS_TAGS = frozenset(["i", "b", "em", "strong", "italic", "bold", "u", "underline", "sc", "monospace"])
# Elements whose content is noise in running text (citation call-outs, footnotes, comments).
_DROP_CONTENT = re.compile(
    r"<(?:[\w.-]+:)?(xref|fn|object-id|ack|ref-list)\b[^>]*>.*?</(?:[\w.-]+:)?\1\s*>|<!--.*?-->|<\?.*?\?>",
    re.S | re.I,
)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_MATH = re.compile(r"<((?:[\w.-]+:)?math)\b([^>]*)>(.*?)</\1\s*>", re.S | re.I)
_ALTTEXT = re.compile(r"""\balttext\s*=\s*(["'])(.*?)\1""", re.S | re.I)
# A tag must start with a letter right after `<`, so `a < b` and `<0.05` are left alone.
_TAG = re.compile(r"</?([A-Za-z][\w.:-]*)(?:\s[^<>]*)?/?>")
_EMPHASIS_MARK = "\ue000"
_LABELLED = re.compile(r"<((?:[\w.-]+:)?AbstractText)\b([^>]*)>(.*?)</\1\s*>", re.S | re.I)
_LABEL_ATTR = re.compile(r"""\b(Label|NlmCategory)\s*=\s*(["'])(.*?)\2""", re.S)
_SEC_TITLE = re.compile(r"<((?:[\w.-]+:)?title)\b[^>]*>(.*?)</\1\s*>\s*(<(?:[\w.-]+:)?p\b[^>]*>)", re.S | re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\ufffe\uffff\u00ad\u200b\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_PARAGRAPH_SPLIT = re.compile(r"\n[ \t\u00a0]*\n\s*")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?%)\]])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[])\s+")
# Starts with a literal so the scan is fast; the space it leaves is squeezed by _DOUBLE_SPACE.
_EMPTY_BRACKETS = re.compile(r"[\[(][\s,;–-]*[\])]")
_DOUBLE_SPACE = re.compile(r" {2,}")
# eLife and others end abstracts with a bare "DOI: http://dx.doi.org/..." paragraph: a link, not text.
_DOI_PARAGRAPH = re.compile(r"(?:DOI|doi):?\s*(?:https?://(?:dx\.)?doi\.org/)?10\.\S+")
_BRACKETED_TITLE = re.compile(r"^\[(.+)\]\.?$", re.S)


def to_nfc(text: str) -> str:
    """Unicode NFC, so that `é` typed two ways compares and indexes as one string."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def remove_control_chars(text: str) -> str:
    """Drop NULs (PostgreSQL text rejects them), C0/C1 controls, BOMs, soft hyphens and lone surrogates.

    Line breaks of every flavour become `\\n` first, so paragraph boundaries survive.
    """
    return _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))


def join_structured_labels(text: str) -> str:
    """Turn labelled abstract sections into `LABEL: text` paragraphs.

    MEDLINE: `<AbstractText Label="METHODS">…</AbstractText>`; JATS/Crossref: `<sec><title>Methods</title><p>…`.
    """
    if "<" not in text:
        return text
    text = _LABELLED.sub(_labelled_paragraph, text)
    return _SEC_TITLE.sub(_titled_paragraph, text)


def _labelled_paragraph(match: re.Match[str]) -> str:
    labels = {name: value.strip() for name, _, value in _LABEL_ATTR.findall(match.group(2))}
    label = labels.get("Label") or labels.get("NlmCategory") or ""
    body = match.group(3)
    if not label or label.upper() == "UNASSIGNED":
        return f"<p>{body}</p>"
    return f"<p>{label}: {body}</p>"


def _titled_paragraph(match: re.Match[str]) -> str:
    title = match.group(2).strip()
    if not _TAG.sub("", title).strip():
        return match.group(3)
    separator = "" if title.endswith((":", ".", "?", "!")) else ":"
    return f"{match.group(3)}{title}{separator} "


def strip_markup(text: str) -> str:
    """HTML/JATS/MathML markup to plain text: block elements become paragraph breaks, inline tags vanish.

    MathML keeps its `alttext` when present (else its token text), citation call-outs (`<xref>`) and
    footnotes are dropped with their content, CDATA keeps its content.
    """
    if "<" not in text:
        return text
    text = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), text)
    text = _DROP_CONTENT.sub("", text)
    text = _MATH.sub(_math_text, text)
    text = _TAG.sub(_replace_tag, text)
    text = re.sub(rf"(?<=\w){_EMPHASIS_MARK}+(?=\w)", " ", text)
    return text.replace(_EMPHASIS_MARK, "")


def _math_text(match: re.Match[str]) -> str:
    alt = _ALTTEXT.search(match.group(2))
    if alt and alt.group(2).strip():
        return f" {alt.group(2).strip()} "
    return _TAG.sub("", match.group(3))


def _replace_tag(match: re.Match[str]) -> str:
    name = match.group(1).rsplit(":", 1)[-1].lower()
    if name in _BLOCK_TAGS:
        return PARAGRAPH
    if name in _EMPHASIS_TAGS:
        return _EMPHASIS_MARK
    return ""


def decode_entities(text: str) -> str:
    """HTML and XML character references (`&amp;`, `&#946;`, `&#x02013;`) to characters, once."""
    return html.unescape(text) if "&" in text else text


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace inside paragraphs; keep one blank line between paragraphs; trim.

    Source indentation and single newlines (XML pretty-printing, Crossref titles) are not boundaries.
    """
    paragraphs = (_SPACES.sub(" ", part).strip() for part in _PARAGRAPH_SPLIT.split(text))
    return PARAGRAPH.join(p for p in paragraphs if p)


def tidy_punctuation(text: str) -> str:
    """Mend what removed markup leaves: `text [ ].`, `word .`, `( x`."""
    if "[" in text or "(" in text:
        text = _DOUBLE_SPACE.sub(" ", _EMPTY_BRACKETS.sub("", text))
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACE_AFTER_OPEN.sub(r"\1", text)


def drop_link_paragraphs(text: str) -> str:
    """Remove paragraphs that are only a DOI link (`DOI: http://dx.doi.org/10.7554/eLife.00005.001`)."""
    if "10." not in text:
        return text
    paragraphs = text.split(PARAGRAPH)
    return PARAGRAPH.join(p for p in paragraphs if not _DOI_PARAGRAPH.fullmatch(p))


def clean_text(text: str | None) -> str | None:
    """All steps in order; None or an empty result gives None."""
    if text is None:
        return None
    text = strip_markup(join_structured_labels(remove_control_chars(to_nfc(text))))
    if "&" in text:
        # Decoding may produce controls (`&#x85;`) or decomposed sequences: run those two steps again.
        text = to_nfc(remove_control_chars(decode_entities(text)))
    return drop_link_paragraphs(tidy_punctuation(normalize_whitespace(text))) or None


def clean_title(text: str | None) -> str | None:
    """A title on one line, without the brackets MEDLINE puts around translated titles, nor a final period."""
    text = clean_text(text)
    if text is None:
        return None
    text = _SPACES.sub(" ", text)
    bracketed = _BRACKETED_TITLE.match(text)
    if bracketed:
        text = bracketed.group(1).strip()
    if text.endswith(".") and not text.endswith(("..", " al.", "etc.")):
        text = text[:-1].rstrip()
    return text or None


def rebuild_inverted_abstract(index: Mapping[str, Sequence[int]] | None) -> str | None:
    """OpenAlex `abstract_inverted_index` (word -> positions) back to the abstract, words in position order."""
    if not index:
        return None
    placed = sorted((pos, word) for word, positions in index.items() for pos in positions or ())
    return " ".join(word for _, word in placed) or None
