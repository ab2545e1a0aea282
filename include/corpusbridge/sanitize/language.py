"""Cheap language identification: the source's own tag when usable, else stopwords and scripts, else 'und'.

No model and no dependency: good enough to route English vs the big European languages and to flag
non-Latin scripts; anything unsure is recorded as undetermined rather than guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

UNDETERMINED = "und"
# MEDLINE uses ISO 639-2 (`eng`); OpenAlex and Crossref use ISO 639-1 (`en`).
_ISO3_PAIRS = (
    "eng:en ger:de deu:de fre:fr fra:fr spa:es por:pt ita:it dut:nl nld:nl rus:ru chi:zh zho:zh jpn:ja "
    "kor:ko pol:pl swe:sv dan:da nor:no fin:fi cze:cs ces:cs hun:hu tur:tr gre:el ell:el ara:ar heb:he "
    "ukr:uk cro:hr hrv:hr per:fa"
)
_ISO3_TO_ISO1 = dict(pair.split(":") for pair in _ISO3_PAIRS.split())
_STOPWORD_LISTS = {
    "en": "the of and in to with for is that was were are by from this on which as be an these",
    "de": "der die das und mit von den im ist zu bei auf des eine ein nicht wurde werden sich für",
    "fr": "le la les des et du une dans est pour sur par au avec que qui sont ont été aux",
    "es": "el la los las de y en del que con una por para se como fue son sobre entre",
    "pt": "o os da do das dos e em que com uma para por foi são na no pelo entre",
    "it": "il lo gli della delle dei di che con una per sono nel nella stato degli tra",
    "nl": "de het een van en in met voor op zijn werd worden bij niet ook door dat",
}
_STOPWORDS = {lang: words.split() for lang, words in _STOPWORD_LISTS.items()}
_WORD_LANGS: dict[str, set[str]] = {}
for _lang, _words in _STOPWORDS.items():
    for _word in _words:
        _WORD_LANGS.setdefault(_word, set()).add(_lang)
_WORD = re.compile(r"[^\W\d_]+")
_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
)
_MIN_HITS = 3
_SAMPLE_CHARS = 3000


@dataclass(frozen=True)
class Language:
    code: str
    origin: str  # 'source' | 'detected' | 'none'


def source_language(tag: str | None) -> str | None:
    """The source's language tag as ISO 639-1, or None when it is missing or not a language we can map."""
    if not tag:
        return None
    tag = tag.strip().lower().replace("_", "-").split("-")[0]
    if len(tag) == 2 and tag.isalpha():
        return tag
    return _ISO3_TO_ISO1.get(tag)


def detect_language(text: str) -> str:
    """Best guess from stopword counts, then from the script; 'und' when the evidence is thin or split."""
    sample = text[:_SAMPLE_CHARS]
    counts: Counter[str] = Counter()
    for word in _WORD.findall(sample.lower()):
        counts.update(_WORD_LANGS.get(word, ()))
    ranked = counts.most_common(2)
    if ranked and ranked[0][1] >= _MIN_HITS and (len(ranked) == 1 or ranked[0][1] >= 1.5 * ranked[1][1]):
        return ranked[0][0]
    return _script_language(sample)


def _script_language(sample: str) -> str:
    if sample.isascii():
        return UNDETERMINED
    letters = sum(ch.isalpha() for ch in sample) or 1
    for code, pattern in _SCRIPTS:
        if len(pattern.findall(sample)) / letters > 0.3:
            return code
    return UNDETERMINED


def choose_language(tag: str | None, text: str) -> Language:
    """The source tag wins (it was set by a cataloguer); detection is the fallback."""
    known = source_language(tag)
    if known:
        return Language(known, "source")
    detected = detect_language(text) if text else UNDETERMINED
    return Language(detected, "detected" if detected != UNDETERMINED else "none")
