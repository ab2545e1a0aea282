"""Sanitize + index throughput against a plain COPY of the same rows, and search latency.

    python bench/sanitize.py --docs 200000 [--workers 2] [--repeat 5] [--scratch DIR]

Raw documents shaped like ingestion's output (MEDLINE labelled abstracts, JATS sections, Crossref `<jats:p>`,
OpenAlex plain text, inline `<i>`/`<sup>`, entities) are generated untimed into a COPY file. Timed, in one
fresh database on the embedded server: (1) COPY of those rows into raw_documents (the peer), (2) `sanitize`,
(3) `index` (PostgreSQL FTS), (4) a no-change rerun of both; then p50/p95 latency of 20 representative queries
(selective topic terms, common words, phrases, or, exclusion), each run --repeat times after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "bench")]

from gen_corpus import WORDS  # noqa: E402
from ingest import _copy_line, _fresh_db  # noqa: E402  (the ingestion bench's COPY encoding and fresh database)

from corpusbridge.config import worker_count  # noqa: E402
from corpusbridge.db import embedded_uri  # noqa: E402
from corpusbridge.index.fulltext import search_postgres  # noqa: E402
from corpusbridge.index.stage import run_index  # noqa: E402
from corpusbridge.sanitize.stage import run_sanitize  # noqa: E402

# A long tail of topic terms (gene-like symbols) so that most queries are selective, as real ones are.
TOPICS = tuple(f"{a}{b}{n}" for a in "abcdefghkmnprstw" for b in "aeiloru" for n in range(1, 90))
# Selective: topic terms (each in ~0.15% of documents) and phrases; broad: common words (each in ~30%).
SELECTIVE = (
    "ka12",
    "ke7 protein",
    "so45 -tumor",
    "pi3 or be8",
    '"gene expression" nu61',
    "hu4 receptor binding",
    '"clinical trial"',
    '"deep learning" prediction',
    "we20",
    '"immune response"',
    "ta88 or to2",
)
BROAD = (
    "cancer",
    "lung cancer survival",
    "mouse brain neuron",
    "climate ecology soil",
    "vaccine antibody response",
    "insulin glucose metabolism obesity",
    "tumor -mouse",
    "zebrafish or yeast",
    "drug dose response",
)
QUERIES = SELECTIVE + BROAD
RAW_COLUMNS = (
    "doc_id",
    "source_format",
    "source_file",
    "source_mtime_ns",
    "source_ordinal",
    "title",
    "abstract",
    "full_text",
    "authors",
    "year",
    "venue",
    "language",
    "raw",
    "content_hash",
    "last_run_id",
)


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) if rng.random() > 0.08 else rng.choice(TOPICS) for _ in range(n)]
    return " ".join(words).capitalize()


def _abstract(rng: random.Random, fmt: str) -> str:
    parts = [
        f"{_sentence(rng, rng.randint(8, 20))} &amp; <i>{rng.choice(TOPICS)}</i><sup>2</sup>."
        for _ in range(rng.randint(3, 7))
    ]
    if fmt == "medline":
        labels = ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS")
        return "".join(f'<AbstractText Label="{lab}">{p}</AbstractText>' for lab, p in zip(labels, parts, strict=False))
    if fmt == "jats":
        return "".join(f"<sec><title>Part {i}</title><p>{p}</p></sec>" for i, p in enumerate(parts))
    if fmt == "crossref":
        return "<jats:p>" + " ".join(parts) + "</jats:p>"
    return " ".join(parts)


def _row(rng: random.Random, i: int) -> tuple:
    fmt = ("openalex", "crossref", "medline", "jats", "jsonl")[i % 5]
    title = f"{_sentence(rng, rng.randint(6, 12))} in <i>{rng.choice(TOPICS)}</i>"
    authors = [{"name": f"{_sentence(rng, 1)} {_sentence(rng, 1)}"} for _ in range(rng.randint(1, 4))]
    body = "\n".join(f"<p>{_sentence(rng, 25)}.</p>" for _ in range(4)) if fmt == "jats" else None
    return (
        f"doi:10.5555/bench.{i}",
        fmt,
        "bench",
        0,
        i,
        title,
        _abstract(rng, fmt),
        body,
        json.dumps(authors),
        rng.randint(1990, 2025),
        "Journal of Benchmarks",
        "en" if i % 3 else None,
        "{}",
        f"h{i}",
        1,
    )


def _write_rows(path: Path, docs: int) -> None:
    rng = random.Random(2026)
    with open(path, "wb") as out:
        for i in range(docs):
            out.write(_copy_line(_row(rng, i)))


def _timed_copy(conn, rows: Path) -> float:
    started = time.monotonic()
    with conn.cursor().copy(f"COPY raw_documents ({', '.join(RAW_COLUMNS)}) FROM STDIN") as copy, open(rows, "rb") as f:
        while chunk := f.read(1 << 20):
            copy.write(chunk)
    conn.commit()
    return time.monotonic() - started


def _latencies(conn, queries: tuple[str, ...], repeat: int) -> list[float]:
    timings = []
    for query in queries:
        search_postgres(conn, query, limit=10)  # warm-up
        for _ in range(repeat):
            started = time.perf_counter()
            search_postgres(conn, query, limit=10)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def bench(docs: int, repeat: int, scratch: Path, workers: int | None) -> dict:
    import psycopg

    rows = scratch / f"raw-{docs}.copy"
    if not rows.exists():
        _write_rows(rows, docs)
    uri = _fresh_db(embedded_uri(scratch / "pgdata"), f"bench_sanitize_{docs}")
    with psycopg.connect(uri) as conn:
        copy_s = _timed_copy(conn, rows)
        sanitized = run_sanitize(conn, batch_size=5000, workers=workers)
        indexed = run_index(conn)
        rerun_started = time.monotonic()
        noop = (run_sanitize(conn).rows_written, run_index(conn).rows_written)
        rerun_s = time.monotonic() - rerun_started
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE clean_documents")
        conn.autocommit = False
        selective = sorted(_latencies(conn, SELECTIVE, repeat))
        broad = sorted(_latencies(conn, BROAD, repeat))
        ms = sorted(selective + broad)
    both = sanitized.seconds + indexed.seconds
    return {
        "docs": docs, "workers": workers or worker_count(),
        "copy_s": round(copy_s, 2), "copy_docs_per_s": round(docs / copy_s),
        "sanitize_s": round(sanitized.seconds, 2), "sanitize_docs_per_s": round(docs / sanitized.seconds),
        "index_s": round(indexed.seconds, 2), "index_docs_per_s": round(docs / indexed.seconds),
        "sanitize_plus_index_docs_per_s": round(docs / both), "ratio_vs_copy": round(copy_s / both, 3),
        "clean": sanitized.docs_clean, "rejected": sanitized.docs_rejected, "noop_rerun_s": round(rerun_s, 3),
        "noop_rerun_rows_written": sum(noop), "queries": len(QUERIES), "query_runs": len(ms),
        "query_p50_ms": _pct(ms, 0.5), "query_p95_ms": _pct(ms, 0.95),
        "query_max_ms": round(ms[-1], 1), "selective_p50_ms": _pct(selective, 0.5),
        "selective_p95_ms": _pct(selective, 0.95), "broad_p50_ms": _pct(broad, 0.5), "broad_p95_ms": _pct(broad, 0.95),
    }  # fmt: skip


def _pct(sorted_ms: list[float], q: float) -> float:
    return round(sorted_ms[round(q * (len(sorted_ms) - 1))], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=None, help="cleaning processes (default: granted cores)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query (after one warm-up)")
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="cb-bench-sanitize-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(json.dumps(bench(args.docs, args.repeat, scratch, args.workers)), flush=True)


if __name__ == "__main__":
    main()
