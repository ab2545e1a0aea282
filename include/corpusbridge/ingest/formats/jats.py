"""JATS / PMC full-text XML (`.nxml`, eLife, `<pmc-articleset>` efetch output)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from corpusbridge.ingest.formats.xml_records import child, children, inner_xml, text_of
from corpusbridge.ingest.records import Record, RecordError, document_id, expect_year, person

FORMAT = "jats"
RECORD_TAGS = ("article",)
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_SUMMARY_TYPES = {"executive-summary", "summary", "teaser", "web-summary", "precis", "graphical"}


def _main_abstract(meta: ET.Element) -> ET.Element | None:
    """The research abstract; digests and author summaries stay in the raw record."""
    abstracts = meta.findall("abstract")
    plain = [a for a in abstracts if a.get("abstract-type") not in _SUMMARY_TYPES]
    chosen = plain or abstracts
    return chosen[0] if chosen else None


def _year(meta: ET.Element) -> int | None:
    years = []
    for date in meta.findall("pub-date"):
        value = (date.findtext("year") or "").strip()
        if value[:4].isdigit():
            years.append(expect_year(value[:4], "pub-date/year"))
    return min((y for y in years if y), default=None)


def _authors(meta: ET.Element) -> list[dict[str, Any]]:
    authors = []
    for contrib in children(meta, "contrib-group", "contrib"):
        if contrib.get("contrib-type", "author") != "author":
            continue
        name = contrib.find("name")
        collab = text_of(contrib.find("collab"))
        if name is not None and name.findtext("surname"):
            authors.append(person(None, text_of(name.find("given-names")), text_of(name.find("surname"))))
        elif collab:
            authors.append(person(collab))
        elif text_of(contrib.find("string-name")):
            authors.append(person(text_of(contrib.find("string-name"))))
    return authors


def to_record(element: ET.Element, locator: str, raw_xml: str) -> Record:
    meta = child(element, "front", "article-meta")
    if meta is None:
        raise RecordError("MissingField", "article has no front/article-meta")
    ids = {i.get("pub-id-type", ""): (i.text or "").strip() for i in meta.findall("article-id")}
    pmc = ids.get("pmc") or ids.get("pmcid")
    if pmc and not pmc.upper().startswith("PMC"):
        pmc = f"PMC{pmc}"
    journal = child(element, "front", "journal-meta")
    venue = text_of(child(journal, "journal-title-group", "journal-title")) or text_of(child(journal, "journal-title"))
    return Record(
        doc_id=document_id(
            ids.get("doi"), [("pmcid", pmc), ("pmid", ids.get("pmid")), ("publisher", ids.get("publisher-id"))]
        ),
        source_format=FORMAT,
        locator=locator,
        title=inner_xml(child(meta, "title-group", "article-title")),
        abstract=inner_xml(_main_abstract(meta)),
        full_text=inner_xml(element.find("body")),
        authors=_authors(meta),
        year=_year(meta),
        venue=venue,
        language=element.get(_XML_LANG),
        raw={"xml": raw_xml},
    )
