"""Ingestion throughput against the limit measured in the same run: a plain COPY of the same parsed rows.

    python bench/ingest.py --docs 100000 [--docs 1000000] [--workers 2] [--big-file-mb 500]

For each size: generate the crawl (not timed), run `corpusbridge ingest` in a subprocess (files/s, records/s,
MB/s, peak RSS of the largest process), then COPY the very same already-parsed rows on the same server:
- the goal's peer: one row per distinct document COPYed into the real `raw_documents` (logged, primary key,
  jsonb): what a loader that trusted its input would do (`ratio_vs_final_table_copy`, goal >= 0.5);
- a stricter peer: every record COPYed into an unlogged table with jsonb columns and no index (the shape of
  the staging table before migration 0003; `ratio_vs_unlogged_jsonb_copy`): parsing and storing the JSON
  without any WAL, key or duplicate handling;
- a floor: every record COPYed as text into the staging table's shape (no JSON parsing, no index, no WAL;
  `ratio_vs_copy`): the price of moving the bytes alone, which no loader of jsonb rows can reach.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "bench")]

from gen_corpus import generate  # noqa: E402

from corpusbridge.db import apply_migrations, embedded_uri  # noqa: E402
from corpusbridge.ingest.copy_in import FileTask, record_row  # noqa: E402
from corpusbridge.ingest.discover import walk_files  # noqa: E402
from corpusbridge.ingest.statements import COPY_COLUMNS  # noqa: E402


def _fresh_db(server: str, name: str) -> str:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    uri = make_conninfo(**(conninfo_to_dict(server) | {"dbname": name}))
    with psycopg.connect(uri) as conn:
        apply_migrations(conn)
    return uri


def _run_ingest(corpus: Path, uri: str, workers: int) -> tuple[dict, float, int]:
    env = os.environ | {"PYTHONPATH": str(REPO / "include")}
    argv = [
        sys.executable,
        "-m",
        "corpusbridge",
        "ingest",
        str(corpus),
        "--db",
        uri,
        "--json",
        "--workers",
        str(workers),
    ]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, *argv], env=env, capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout), wall, peak_kib


# Runs the ingest and reports the peak RSS of its largest process (loader or parser worker) for this run alone.
_PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"
)


# The final table's columns, in the order the baseline COPY writes them.
FINAL_COLUMNS = ("doc_id", "source_format", "title", "abstract", "full_text", "authors", "year", "venue", "language",
                 "raw", "source_file", "source_mtime_ns", "source_ordinal", "content_hash", "last_run_id")  # fmt: skip


def _parsed_rows_files(corpus: Path, staging_rows: Path, final_rows: Path) -> tuple[int, int]:
    """Parse everything once (untimed) into COPY text: every record as the ingest stages it, and each distinct
    document once, shaped like `raw_documents` (what a naive loader that trusted its input would COPY)."""
    from corpusbridge.ingest.parse import FileParse, parse_file
    from corpusbridge.ingest.records import Record

    rows, seen = 0, set()
    with open(staging_rows, "wb") as out, open(final_rows, "wb") as final:
        for number, found in enumerate(walk_files(corpus)):
            task = FileTask(number, found.path, found.size, found.mtime_ns, None)
            for ordinal, item in enumerate(parse_file(Path(found.path), FileParse())):
                if isinstance(item, Record):
                    row = record_row(task, ordinal, item)
                    out.write(_copy_line(row))
                    rows += 1
                    if item.doc_id not in seen:
                        seen.add(item.doc_id)
                        final.write(_copy_line((*row[6:16], row[2], row[3], row[4], row[16], 0)))
    return rows, len(seen)


def _copy_line(row: tuple) -> bytes:
    def field(v: object) -> str:
        if v is None:
            return "\\N"
        s = str(v)
        return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    return ("\t".join(field(v) for v in row) + "\n").encode("utf-8")


def _jsonb_staging_db(server: str, docs: int) -> str:
    """A database with `jsonb_staging`: the staging table as it was before migration 0003 (jsonb, compressed)."""
    import psycopg

    uri = _fresh_db(server, f"bench_jsonb_{docs}")
    with psycopg.connect(uri) as conn:
        conn.execute("CREATE UNLOGGED TABLE jsonb_staging (LIKE ingest_staging INCLUDING DEFAULTS)")
        conn.execute(
            "ALTER TABLE jsonb_staging ALTER raw TYPE jsonb USING raw::jsonb, "
            "ALTER authors TYPE jsonb USING authors::jsonb"
        )
    return uri


def _time_copy(uri: str, rows_file: Path, table: str, columns: tuple[str, ...]) -> float:
    import psycopg

    with psycopg.connect(uri) as conn:
        started = time.monotonic()
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with conn.cursor().copy(statement) as copy, open(rows_file, "rb") as f:
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        return time.monotonic() - started


def bench(docs: int, workers: int, scratch: Path) -> dict:
    corpus = scratch / f"corpus-{docs}"
    if not (corpus / ".expected.json").exists():
        generate(corpus, docs, seed=docs)
    expected = json.loads((corpus / ".expected.json").read_text())
    server = embedded_uri(scratch / "pgdata")
    # Each database is dropped as soon as it is measured: left behind, autovacuum would work through its fresh
    # rows while the next one is timed.
    summary, wall, peak_kib = _run_ingest(corpus, _fresh_db(server, f"bench_ingest_{docs}"), workers)
    _drop_db(server, f"bench_ingest_{docs}")
    rows_file, final_file = scratch / f"rows-{docs}.copy", scratch / f"final-{docs}.copy"
    parsed, distinct = _parsed_rows_files(corpus, rows_file, final_file)
    copy_seconds = _time_copy(_fresh_db(server, f"bench_copy_{docs}"), rows_file, "ingest_staging", COPY_COLUMNS)
    _drop_db(server, f"bench_copy_{docs}")
    jsonb_seconds = _time_copy(_jsonb_staging_db(server, docs), rows_file, "jsonb_staging", COPY_COLUMNS)
    _drop_db(server, f"bench_jsonb_{docs}")
    final_seconds = _time_copy(_fresh_db(server, f"bench_final_{docs}"), final_file, "raw_documents", FINAL_COLUMNS)
    _drop_db(server, f"bench_final_{docs}")
    loaded_rows = summary["records_loaded"] + summary["records_duplicate"]
    result = {
        "docs": docs, "files": summary["files_seen"], "records": summary["records_seen"], "wall_s": round(wall, 2),
        "ingest_s": summary["seconds"], "files_per_s": round(summary["files_seen"] / wall),
        "records_per_s": round(summary["records_seen"] / wall),
        "mb_per_s": round(summary["bytes_read"] / wall / 1e6, 1),
        "peak_rss_mb": round(peak_kib / 1024), "copy_s": round(copy_seconds, 2),
        "copy_records_per_s": round(parsed / copy_seconds), "ratio_vs_copy": round(copy_seconds / wall, 3),
        "unlogged_jsonb_copy_s": round(jsonb_seconds, 2),
        "ratio_vs_unlogged_jsonb_copy": round(jsonb_seconds / wall, 3),
        "final_copy_s": round(final_seconds, 2), "ratio_vs_final_table_copy": round(final_seconds / wall, 3),
        "reconciled": summary["reconciled"] and summary["records_seen"] == expected["records"],
    }  # fmt: skip
    assert parsed == loaded_rows, (parsed, loaded_rows)
    assert distinct == summary["records_loaded"], (distinct, summary["records_loaded"])
    rows_file.unlink()
    final_file.unlink()
    return result


def _drop_db(server: str, name: str) -> None:
    """Left behind, a loaded database is vacuumed and analyzed by autovacuum during the next measurement."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def bench_big_file(megabytes: int, workers: int, scratch: Path) -> dict:
    """One huge JSON Lines file: peak RSS must stay flat (lines are streamed, each held to the record cap)."""
    corpus = scratch / f"big-{megabytes}mb"
    corpus.mkdir(parents=True, exist_ok=True)
    path = corpus / "huge.jsonl"
    if not path.exists():
        line = {"title": "A long crawl file " * 5, "abstract": "word " * 300}
        with open(path, "w") as f:
            written, i = 0, 0
            while written < megabytes * 1_000_000:
                text = json.dumps(line | {"id": f"big{i}"}) + "\n"
                f.write(text)
                written, i = written + len(text), i + 1
    server = embedded_uri(scratch / "pgdata")
    summary, wall, peak_kib = _run_ingest(corpus, _fresh_db(server, f"bench_big_{megabytes}"), workers)
    mb_per_s = round(summary["bytes_read"] / wall / 1e6, 1)
    _drop_db(server, f"bench_big_{megabytes}")
    return {"file_mb": megabytes, "records": summary["records_seen"], "wall_s": round(wall, 2), "mb_per_s": mb_per_s,
            "peak_rss_mb": round(peak_kib / 1024)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, action="append", help="corpus size (repeatable)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--big-file-mb", type=int, default=0, help="also ingest one JSON Lines file of this size")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="cb-bench-ingest-"))
    for docs in args.docs or [100_000]:
        print(json.dumps(bench(docs, args.workers, scratch)), flush=True)
    if args.big_file_mb:
        print(json.dumps(bench_big_file(args.big_file_mb, args.workers, scratch)), flush=True)


if __name__ == "__main__":
    main()
