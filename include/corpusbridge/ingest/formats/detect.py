"""Which parser reads a file: decided from its first bytes, with the extension as the tie-breaker."""

from __future__ import annotations

import re
from typing import Literal

FileFormat = Literal["jsonl", "json", "medline", "jats"]

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")
_MEDLINE_ROOTS = re.compile(rb"<(PubmedArticleSet|MedlineCitationSet|PubmedArticle|MedlineCitation)[\s>]")
_JATS_ROOTS = re.compile(rb"<(pmc-articleset|article)[\s>]")


def _strip_gz(name: str) -> str:
    lowered = name.lower()
    return lowered[:-3] if lowered.endswith(".gz") else lowered


def detect_format(name: str, head: bytes) -> FileFormat | None:
    """`head` is the start of the decompressed content. None means no parser fits (the file is quarantined)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    inner = _strip_gz(name)
    if text.startswith(b"<"):
        if _MEDLINE_ROOTS.search(head):
            return "medline"
        if _JATS_ROOTS.search(head):
            return "jats"
        return None
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        if inner.endswith(_JSONL_SUFFIXES):
            return "jsonl"
        if inner.endswith(".json"):
            return "json"
        return "jsonl" if _first_line_is_whole_object(text) else "json"
    return None


def _first_line_is_whole_object(text: bytes) -> bool:
    """One JSON object per line (an OpenAlex snapshot `part_000.gz`), rather than one pretty-printed document."""
    first, newline, _ = text.partition(b"\n")
    return bool(newline) and first.rstrip().endswith(b"}")
