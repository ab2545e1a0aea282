"""spaCy's `blank("en")` tokenizer rules and sentencizer marks as plain data, so the payload never imports spaCy.

`import spacy` costs ~1.8 s of CPU per process (measured, bench/RESULTS.md), more than scanning a 50 MB shard with a
1k-term dictionary. The sentence splitter only needs the rules (prefix/suffix/infix/URL patterns, special cases) and
the sentencizer's punctuation, so they are exported once from spaCy into `spacy_en_rules.json` (package data) and
read from there. The file records the spaCy version it came from: when the installed spaCy differs, the rules are
taken from spaCy itself (slower start, same answers). Regenerate after a spaCy upgrade:

    python -m corpusbridge.extract.sentences.spacy_rules
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RULES_FILE = "spacy_en_rules.json"


@dataclass(frozen=True)
class Pattern:
    pattern: str
    flags: int


@dataclass(frozen=True)
class TokenizerRules:
    """What `spacy.blank("en")`'s tokenizer and the default sentencizer decide with."""

    spacy_version: str
    prefix: Pattern | None
    suffix: Pattern | None
    infix: Pattern | None
    token_match: Pattern | None
    url_match: Pattern | None
    special_cases: dict[str, list[str]]  # chunk -> the texts of its tokens
    faster_heuristics: bool
    punct_chars: list[str]  # the sentencizer's sentence-final marks

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True, indent=0) + "\n"

    @classmethod
    def from_json(cls, text: str) -> TokenizerRules:
        data: dict[str, Any] = json.loads(text)
        for name in ("prefix", "suffix", "infix", "token_match", "url_match"):
            data[name] = Pattern(**data[name]) if data[name] is not None else None
        return cls(**data)


def _pattern(bound: Any) -> Pattern | None:
    """The compiled `re` pattern behind a bound method such as `pattern.search`."""
    if bound is None:
        return None
    compiled = bound.__self__
    return Pattern(compiled.pattern, compiled.flags)


def export_rules() -> TokenizerRules:
    """Read the rules out of the installed spaCy (imports it)."""
    import spacy
    from spacy.attrs import ORTH
    from spacy.pipeline import Sentencizer

    tokenizer: Any = spacy.blank("en").tokenizer
    return TokenizerRules(
        spacy_version=spacy.__version__,
        prefix=_pattern(tokenizer.prefix_search),
        suffix=_pattern(tokenizer.suffix_search),
        infix=_pattern(tokenizer.infix_finditer),
        token_match=_pattern(tokenizer.token_match),
        url_match=_pattern(tokenizer.url_match),
        special_cases={chunk: [t[ORTH] for t in tokens] for chunk, tokens in sorted(tokenizer.rules.items())},
        faster_heuristics=bool(tokenizer.faster_heuristics),
        punct_chars=sorted(Sentencizer.default_punct_chars),
    )


def installed_spacy() -> str | None:
    """The installed spaCy's version, without importing spaCy (~1.8 s) or importlib.metadata (~7 ms of every payload
    start: it imports the email package): read from spacy/about.py, with importlib.metadata only as the fallback."""
    spec = importlib.util.find_spec("spacy")
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or []:
        about = Path(folder) / "about.py"
        found = (
            re.search(r'^__version__ = "([^"]+)"', about.read_text(encoding="utf-8"), re.M) if about.is_file() else None
        )
        if found:
            return found.group(1)
    from importlib import metadata

    try:
        return metadata.version("spacy")
    except metadata.PackageNotFoundError:
        return None


def stored_rules() -> TokenizerRules:
    return TokenizerRules.from_json(Path(__file__).with_name(RULES_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def tokenizer_rules() -> TokenizerRules:
    """The stored rules, unless the installed spaCy is another version (then spaCy's own, with a warning)."""
    rules = stored_rules()
    installed = installed_spacy()
    if installed is not None and installed != rules.spacy_version:
        log.warning(
            "%s was exported from spaCy %s, but spaCy %s is installed: reading the rules from spaCy (slower start); "
            "run `python -m corpusbridge.extract.sentences.spacy_rules` to refresh the file",
            RULES_FILE,
            rules.spacy_version,
            installed,
        )
        return export_rules()
    return rules


def main() -> None:
    """Rewrite the stored rules from the installed spaCy."""
    target = Path(__file__).with_name(RULES_FILE)
    target.write_text(export_rules().to_json(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
