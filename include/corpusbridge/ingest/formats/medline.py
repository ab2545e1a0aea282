"""PubMed/MEDLINE XML: `PubmedArticleSet` (current) and `MedlineCitationSet` (legacy baseline) files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from corpusbridge.ingest.formats.xml_records import child, child_text, children, inner_xml, text_of
from corpusbridge.ingest.records import Record, RecordError, document_id, expect_year, person

FORMAT = "medline"
CURRENT_TAGS = ("PubmedArticle", "PubmedBookArticle")
LEGACY_TAGS = ("MedlineCitation",)


def record_tags(head: bytes) -> tuple[str, ...]:
    """Which element is one record: legacy files hold bare MedlineCitations."""
    return LEGACY_TAGS if b"<MedlineCitationSet" in head else CURRENT_TAGS


def _article_ids(element: ET.Element, article: ET.Element) -> dict[str, str]:
    listed = children(element, "PubmedData", "ArticleIdList", "ArticleId")
    ids = {a.get("IdType", ""): (a.text or "").strip() for a in listed}
    for loc in article.findall("ELocationID"):
        if loc.get("EIdType") == "doi" and loc.text:
            ids.setdefault("doi", loc.text.strip())
    return ids


def _abstract(article: ET.Element) -> str | None:
    """The AbstractText parts as markup, labels kept (`<AbstractText Label="METHODS">…`) for sanitize to join."""
    parts = [ET.tostring(t, encoding="unicode").strip() for t in children(article, "Abstract", "AbstractText")]
    return "".join(parts) or None


def _year(article: ET.Element, citation: ET.Element) -> int | None:
    pub_date = child(article, "Journal", "JournalIssue", "PubDate")
    candidates = []
    if pub_date is not None:
        candidates += [pub_date.findtext("Year"), (pub_date.findtext("MedlineDate") or "")[:4]]
    candidates += [child_text(article, "ArticleDate", "Year"), child_text(citation, "DateCompleted", "Year")]
    candidates += [child_text(citation, "DateCreated", "Year")]
    for value in candidates:
        if value and value.strip()[:4].isdigit():
            return expect_year(value.strip()[:4], "PubDate")
    return None


def _authors(article: ET.Element) -> list[dict[str, Any]]:
    authors = []
    for a in children(article, "AuthorList", "Author"):
        collective = text_of(a.find("CollectiveName"))
        if collective:
            authors.append(person(collective))
        elif a.findtext("LastName"):
            authors.append(person(None, a.findtext("ForeName"), a.findtext("LastName")))
    return authors


def to_record(element: ET.Element, locator: str, raw_xml: str) -> Record:
    if element.tag == "PubmedBookArticle":
        raise RecordError("UnsupportedRecordType", "PubmedBookArticle (a book chapter) is not ingested yet")
    citation = element if element.tag == "MedlineCitation" else element.find("MedlineCitation")
    article = citation.find("Article") if citation is not None else None
    if citation is None or article is None:
        raise RecordError("MissingField", "record has no MedlineCitation/Article")
    ids = _article_ids(element, article)
    pmc = ids.get("pmc")
    return Record(
        doc_id=document_id(ids.get("doi"), [("pmid", citation.findtext("PMID")), ("pmcid", pmc)]),
        source_format=FORMAT,
        locator=locator,
        title=inner_xml(article.find("ArticleTitle")) or inner_xml(article.find("VernacularTitle")),
        abstract=_abstract(article),
        full_text=None,
        authors=_authors(article),
        year=_year(article, citation),
        venue=text_of(child(article, "Journal", "Title")) or child_text(citation, "MedlineJournalInfo", "MedlineTA"),
        language=article.findtext("Language"),
        raw={"xml": raw_xml},
    )
