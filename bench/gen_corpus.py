"""Deterministic synthetic crawl: N documents across all five formats, nested folders, some gzipped, with a
controlled fraction of bad records and of documents repeated across files.

    python bench/gen_corpus.py OUT_DIR --docs 100000 [--bad-fraction 0.01] [--seed 7]

Writes OUT_DIR/.expected.json (hidden, so ingestion skips it) with the counts ingestion must report.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = tuple(
    (
        "cell protein gene expression tumor cancer lung breast patient clinical trial cohort risk model "
        "analysis network signal pathway receptor binding membrane enzyme activity inhibitor drug dose "
        "response treatment therapy outcome survival mortality infection virus bacteria immune antibody "
        "vaccine inflammation disease brain neuron cortex memory learning behavior sleep stress hormone "
        "insulin glucose metabolism obesity diet climate ecology species population habitat forest soil "
        "water carbon nitrogen temperature growth yield genome sequence mutation variant allele phenotype "
        "trait evolution selection diversity structure function method measurement sensor imaging resolution "
        "spectroscopy microscopy sample data statistical significant increase decrease effect association "
        "correlation regression prediction classification learning deep small large novel robust early late "
        "acute chronic primary secondary human mouse rat zebrafish plant yeast"
    ).split()
)

FORMATS = ("jsonl", "openalex", "crossref", "medline", "jats")
BAD_KINDS = ("malformed_json", "missing_id", "wrong_type", "invalid_utf8", "nul_byte")


@dataclass
class Expected:
    files: int = 0
    records: int = 0  # records_seen
    quarantined: int = 0
    duplicates: int = 0  # records whose document already appeared earlier in the corpus
    documents: int = 0  # distinct documents loaded


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize()


def _doc(rng: random.Random, i: int) -> dict:
    return {
        "doi": f"10.5555/synth.{i}",
        "title": _sentence(rng, rng.randint(6, 14)),
        "abstract": ". ".join(_sentence(rng, rng.randint(8, 20)) for _ in range(rng.randint(3, 8))) + ".",
        "year": rng.randint(1990, 2025),
        "authors": [(_sentence(rng, 1), _sentence(rng, 1)) for _ in range(rng.randint(1, 4))],
        "venue": f"Journal of {_sentence(rng, 2)}",
    }


def _plain(d: dict) -> dict:
    authors = [f"{g} {f}" for g, f in d["authors"]]
    return {"id": d["doi"].rsplit(".", 1)[-1], "doi": d["doi"], "title": d["title"], "abstract": d["abstract"],
            "year": d["year"], "authors": authors, "venue": d["venue"]}  # fmt: skip


def _openalex(d: dict) -> dict:
    index: dict[str, list[int]] = {}
    for pos, word in enumerate(d["abstract"].split()):
        index.setdefault(word, []).append(pos)
    return {
        "id": f"https://openalex.org/W{d['doi'].rsplit('.', 1)[-1]}", "doi": f"https://doi.org/{d['doi']}",
        "title": d["title"], "publication_year": d["year"], "abstract_inverted_index": index,
        "authorships": [{"author": {"display_name": f"{g} {f}"}} for g, f in d["authors"]],
        "primary_location": {"source": {"display_name": d["venue"]}}, "language": "en",
    }  # fmt: skip


def _crossref(d: dict) -> dict:
    return {
        "DOI": d["doi"].upper(), "title": [d["title"]], "abstract": f"<jats:p>{escape(d['abstract'])}</jats:p>",
        "author": [{"given": g, "family": f} for g, f in d["authors"]], "container-title": [d["venue"]],
        "issued": {"date-parts": [[d["year"], 5]]}, "type": "journal-article",
    }  # fmt: skip


def _medline(d: dict, pmid: int) -> str:
    authors = "".join(f"<Author><LastName>{f}</LastName><ForeName>{g}</ForeName></Author>" for g, f in d["authors"])
    return (
        f"<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><Journal><Title>{escape(d['venue'])}</Title>"
        f"<JournalIssue><PubDate><Year>{d['year']}</Year></PubDate></JournalIssue></Journal>"
        f'<ArticleTitle>{escape(d["title"])}</ArticleTitle><Abstract><AbstractText Label="BACKGROUND">'
        f"{escape(d['abstract'])}</AbstractText></Abstract><AuthorList>{authors}</AuthorList>"
        f"<Language>eng</Language></Article></MedlineCitation><PubmedData><ArticleIdList>"
        f'<ArticleId IdType="doi">{d["doi"]}</ArticleId></ArticleIdList></PubmedData></PubmedArticle>\n'
    )


def _jats(d: dict) -> str:
    contribs = "".join(
        f'<contrib contrib-type="author"><name><surname>{f}</surname><given-names>{g}</given-names></name></contrib>'
        for g, f in d["authors"]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<article article-type="research-article"><front><journal-meta>'
        f"<journal-title>{escape(d['venue'])}</journal-title></journal-meta><article-meta>"
        f'<article-id pub-id-type="doi">{d["doi"]}</article-id><title-group><article-title>{escape(d["title"])}'
        f'</article-title></title-group><contrib-group>{contribs}</contrib-group><pub-date pub-type="epub">'
        f"<year>{d['year']}</year></pub-date><abstract><p>{escape(d['abstract'])}</p></abstract></article-meta>"
        f"</front><body><sec><title>Introduction</title><p>{escape(d['abstract'])}</p></sec></body></article>\n"
    )


def _bad_line(rng: random.Random, kind: str) -> bytes:
    if kind == "malformed_json":
        return b'{"id": "broken", "title": "unterminated'
    if kind == "missing_id":
        return json.dumps({"title": _sentence(rng, 5)}).encode()
    if kind == "wrong_type":
        return json.dumps({"id": f"wt{rng.randint(0, 10**9)}", "title": 12345}).encode()
    if kind == "invalid_utf8":
        return b'{"id": "bad-utf8", "title": "caf\xe9 \xff"}'
    return b'{"id": "nul", "title": "a\\u0000b"}'


class CorpusWriter:
    """Writes documents into files of each format, ~`per_file` documents per file, in nested folders."""

    def __init__(self, out: Path, seed: int, per_file: int, bad_fraction: float, dup_fraction: float) -> None:
        self.out, self.rng, self.per_file = out, random.Random(seed), per_file
        self.bad_fraction, self.dup_fraction = bad_fraction, dup_fraction
        self.expected = Expected()
        self.file_no = 0
        self.seen_dois: list[str] = []

    def _path(self, suffix: str) -> Path:
        self.file_no += 1
        folder = self.out / f"{self.file_no // 1000:04d}" / f"{(self.file_no // 100) % 10:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        self.expected.files += 1
        return folder / f"part-{self.file_no:07d}{suffix}"

    def write_group(self, fmt: str, docs: list[dict], first_index: int) -> None:
        self.expected.records += len(docs)
        self.expected.documents += len(docs)
        if fmt == "jsonl":
            lines = [json.dumps(_plain(d)).encode() for d in docs]
            lines += self._bad_lines(len(docs))
            self._write(".jsonl", b"\n".join(lines) + b"\n")
        elif fmt == "openalex":
            lines = [json.dumps(_openalex(d)).encode() for d in docs] + self._bad_lines(len(docs))
            self._write(".jsonl.gz", b"\n".join(lines) + b"\n")
        elif fmt == "crossref":
            body = {"status": "ok", "message-type": "work-list", "message": {"items": [_crossref(d) for d in docs]}}
            self._write(".json", json.dumps(body).encode())
        elif fmt == "medline":
            records = "".join(_medline(d, 40_000_000 + first_index + i) for i, d in enumerate(docs))
            self._write(".xml", f'<?xml version="1.0"?>\n<PubmedArticleSet>\n{records}</PubmedArticleSet>\n'.encode())
        else:
            for d in docs:
                self._write(".nxml", _jats(d).encode())

    def _bad_lines(self, n_docs: int) -> list[bytes]:
        # Only the two line-oriented formats carry bad lines, so they carry the whole corpus' share.
        count = sum(self.rng.random() < self.bad_fraction * len(FORMATS) / 2 for _ in range(n_docs))
        self.expected.records += count
        self.expected.quarantined += count
        return [_bad_line(self.rng, self.rng.choice(BAD_KINDS)) for _ in range(count)]

    def _write(self, suffix: str, data: bytes) -> None:
        path = self._path(suffix)
        path.write_bytes(gzip.compress(data, mtime=0) if suffix.endswith(".gz") else data)


def generate(out: Path, docs: int, *, bad_fraction: float = 0.01, dup_fraction: float = 0.01, seed: int = 7,
             per_file: int = 5) -> Expected:  # fmt: skip
    """Write the corpus; returns (and saves as .expected.json) the counts a clean ingest must report."""
    out.mkdir(parents=True, exist_ok=True)
    writer = CorpusWriter(out, seed, per_file, bad_fraction, dup_fraction)
    rng = random.Random(seed + 1)
    index = 0
    while index < docs:
        fmt = FORMATS[writer.file_no % len(FORMATS)]
        size = min(per_file if fmt != "jats" else 1, docs - index)
        group = [_doc(rng, index + i) for i in range(size)]
        writer.write_group(fmt, group, index)
        if rng.random() < dup_fraction * per_file and index > 0:  # the same work again, from another crawl
            again = _doc(random.Random(seed + 1000 + index), rng.randrange(index))
            again["doi"] = f"10.5555/synth.{rng.randrange(index)}"
            writer.write_group("jsonl", [again], 0)
            writer.expected.documents -= 1
            writer.expected.duplicates += 1
        index += size
    (out / ".expected.json").write_text(json.dumps(asdict(writer.expected), indent=1))
    return writer.expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--bad-fraction", type=float, default=0.01)
    parser.add_argument("--dup-fraction", type=float, default=0.01)
    parser.add_argument("--per-file", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    expected = generate(args.out, args.docs, bad_fraction=args.bad_fraction, dup_fraction=args.dup_fraction,
                        seed=args.seed, per_file=args.per_file)  # fmt: skip
    print(json.dumps(asdict(expected)))


if __name__ == "__main__":
    main()
