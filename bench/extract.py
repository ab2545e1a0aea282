"""Concept extraction benchmark: the same job (case-insensitive, whole-word, leftmost-longest, non-overlapping) by
several methods on the same seeded text, with ratios against the bare pyahocorasick scan measured in the same run.

    .venv/bin/python bench/extract.py                  # ~52 MB, 1k / 100k / 1M terms
    .venv/bin/python bench/extract.py --mb 5 --sizes 1000,100000   # a quick look
    .venv/bin/python bench/extract.py --exported SHARD --dictionary DIR   # an exported shard (see exported_figures)

Slow methods run on a prefix of the corpus (their MB is printed); flashtext runs only if installed
(`uv pip install flashtext==2.7`, it is not a dependency of the package).
"""

from __future__ import annotations

import argparse
import collections
import compileall
import gc
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import ahocorasick
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_terms

import corpusbridge
from corpusbridge.export.schema import ROW_GROUP_ROWS, SHARD_SCHEMA
from corpusbridge.extract.concepts.matcher import Matcher
from corpusbridge.extract.dictionary import build_dictionary, load_dictionary
from corpusbridge.extract.sentences.splitter import SentenceSplitter, spacy_sentence_starts

OUT = Path(__file__).resolve().parent / "out" / "extract"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    method: str
    terms: int
    mb: float
    seconds: float
    matches: int | None
    reference: int | None  # the matcher's count on the same text, for exact-method checks
    note: str = ""

    @property
    def mb_s(self) -> float:
        return self.mb / self.seconds if self.seconds else float("inf")


def _mb(docs: list[str]) -> float:
    return sum(len(d.encode()) + 1 for d in docs) / 1e6


def _prefix(docs: list[str], mb: float) -> list[str]:
    out, size = [], 0.0
    for doc in docs:
        if size >= mb:
            break
        out.append(doc)
        size += (len(doc.encode()) + 1) / 1e6
    return out


def _timed(fn, *args):
    """CPU seconds of this process: the box is shared, and wall time would measure the neighbours too."""
    started = time.process_time()
    value = fn(*args)
    return time.process_time() - started, value


def _wall(fn, *args):
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


# --- the peer and the methods --------------------------------------------------------------------------------------


def bare_automaton(terms: list[str]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for index, term in enumerate(terms):
        automaton.add_word(term, index)
    automaton.make_automaton()
    return automaton


def bare_scan(automaton: ahocorasick.Automaton, docs: list[str]) -> int:
    """The practical limit: lower-case, scan, discard every raw hit (no boundaries, no selection)."""
    sink = collections.deque(maxlen=0)
    for doc in docs:
        sink.extend(automaton.iter(doc.lower()))
    return 0


def matcher_count(matcher: Matcher, docs: list[str]) -> int:
    """The matcher as the payload runs it: (concept id, start, end, matched text) for every match."""
    return sum(len([(concept, s, e, doc[s:e]) for concept, s, e in matcher.locate(doc)]) for doc in docs)


def matcher_find_count(matcher: Matcher, docs: list[str]) -> int:
    """The same through `Matcher.find`, the library API: a `Match` NamedTuple per match."""
    return sum(len(matcher.find(doc)) for doc in docs)


_SHARED: tuple[Matcher, list[str]] | None = None


def _count_chunk(bounds: tuple[int, int]) -> int:
    assert _SHARED is not None
    matcher, docs = _SHARED
    return matcher_count(matcher, docs[bounds[0] : bounds[1]])


def matcher_processes(matcher: Matcher, docs: list[str], processes: int) -> int:
    """Forked after loading: the automaton is shared copy-on-write, as in the program."""
    global _SHARED
    _SHARED = (matcher, docs)
    chunks = [(i, i + 250) for i in range(0, len(docs), 250)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.imap(_count_chunk, chunks))


def _leftmost_longest(candidates: list[tuple[int, int]]) -> int:
    candidates.sort()
    reached, count = -1, 0
    for start, negative_length in candidates:
        if start >= reached:
            reached, count = start - negative_length, count + 1
    return count


def regex_count(terms: list[str], docs: list[str]) -> int:
    ordered = sorted(terms, key=len, reverse=True)  # leftmost-first alternation + longest first = leftmost-longest
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, ordered)) + r")(?!\w)")
    return sum(sum(1 for _ in pattern.finditer(doc.lower())) for doc in docs)


def per_term_count(terms: list[str], docs: list[str]) -> int:
    total = 0
    for doc in docs:
        text = doc.lower()
        candidates = []
        for term in terms:
            at = text.find(term)
            while at >= 0:
                end = at + len(term)
                if (at == 0 or not text[at - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
                    candidates.append((at, -len(term)))
                at = text.find(term, at + 1)
        total += _leftmost_longest(candidates)
    return total


def flashtext_count(terms: list[str], docs: list[str]) -> tuple[float, int]:
    from flashtext import KeywordProcessor

    started = time.perf_counter()
    processor = KeywordProcessor(case_sensitive=False)
    for term in terms:
        processor.add_keyword(term)
    build = time.perf_counter() - started
    return build, sum(len(processor.extract_keywords(doc)) for doc in docs)


def phrase_matcher(terms: list[str]):
    import spacy
    from spacy.matcher import PhraseMatcher

    nlp = spacy.blank("en")
    matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
    matcher.add("T", list(nlp.tokenizer.pipe(terms, batch_size=1000)))
    return nlp, matcher


def phrase_count(nlp, matcher, docs: list[str]) -> int:
    from spacy.util import filter_spans

    return sum(len(filter_spans(matcher(doc, as_spans=True))) for doc in nlp.tokenizer.pipe(docs, batch_size=256))


# --- the program, as a process ---------------------------------------------------------------------------------------


def run_program(shard: Path, artifact: Path, out: Path, workers: int) -> tuple[float, float, int, int]:
    """Process start to Parquet written; returns (wall seconds, CPU seconds, concept rows, peak RSS kB)."""
    command = [
        sys.executable,
        "-m",
        "corpusbridge.extract",
        "--input",
        str(shard),
        "--dictionary",
        str(artifact),
        "--out",
        str(out),
        "--no-embeddings",
        "--workers",
        str(workers),
        "--json",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stdout = process.stdout.read().decode() if process.stdout else ""
    if status != 0:
        raise RuntimeError(f"program failed: {process.stderr.read().decode() if process.stderr else ''}")
    summary = json.loads(stdout)
    # ru_maxrss would count the benchmark's own pages copied by fork before exec; the program reports VmHWM.
    return seconds, usage.ru_utime + usage.ru_stime, summary["concepts"], int((summary["peak_rss_mb"] or 0) * 1024)


def write_shard(docs: list[str], path: Path) -> None:
    ids = [f"doc-{i:07d}" for i in range(len(docs))]
    nulls = pa.nulls(len(docs))
    table = pa.table([ids, docs, nulls.cast(pa.string()), nulls.cast(pa.int32())], schema=SHARD_SCHEMA)
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)


_LOADER = """
import sys
from pathlib import Path
from corpusbridge.extract.dictionary import load_dictionary
seconds = load_dictionary(Path(sys.argv[1])).load_seconds
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1]
print(seconds, hwm)
"""


def load_in_child(artifact: Path) -> tuple[float, int]:
    """Automaton load time and the RSS of a process that only loads it."""
    process = subprocess.Popen([sys.executable, "-c", _LOADER, str(artifact)], stdout=subprocess.PIPE)
    seconds, hwm_kb = (process.stdout.read().decode() if process.stdout else "nan 0").split()
    process.wait()
    return float(seconds), int(hwm_kb)


# --- driver ----------------------------------------------------------------------------------------------------------

SLOW_MB = {"regex": {1000: 5.0, 100_000: 0.02}, "per-term loop": {1000: 5.0}, "flashtext": 10.0, "PhraseMatcher": 5.0}


def dictionary_figures(terms: list[str], work: Path) -> dict[str, float]:
    source = work / f"terms-{len(terms)}.tsv"
    gen_terms.write_terms(source, terms)
    report = build_dictionary(source, work / f"dict-{len(terms)}")
    load_seconds, load_rss = load_in_child(work / f"dict-{len(terms)}")
    return {
        "build_s": report.build_seconds,
        "artifact_mb": report.artifact_bytes / 1e6,
        "load_s": load_seconds,
        "load_rss_mb": load_rss / 1024,
        "keys": report.keys,
    }


def slow_methods(terms: list[str], docs: list[str], matcher: Matcher) -> list[Row]:
    rows: list[Row] = []
    n = len(terms)

    def add(method: str, mb: float, fn, note: str = "") -> None:
        sample = _prefix(docs, mb)
        seconds, count = _timed(fn, sample)
        build = ""
        if isinstance(count, tuple):
            build, count = f"build {count[0]:.1f} s", count[1]
        rows.append(
            Row(
                method,
                n,
                round(_mb(sample), 3),
                seconds,
                count,
                matcher_count(matcher, sample),
                " ".join(x for x in (build, note) if x),
            )
        )

    if n in SLOW_MB["regex"]:
        add("regex alternation", SLOW_MB["regex"][n], lambda s: regex_count(terms, s), "incl. compile")
    if n in SLOW_MB["per-term loop"]:
        add("per-term str.find loop", SLOW_MB["per-term loop"][n], lambda s: per_term_count(terms, s))
    try:
        import flashtext  # noqa: F401

        add("flashtext", SLOW_MB["flashtext"], lambda s: flashtext_count(terms, s), "scan only in MB/s")
    except ImportError:
        rows.append(Row("flashtext", n, 0, 0, None, None, "not installed (uv pip install flashtext==2.7)"))
    if n <= 100_000:
        started = time.perf_counter()
        nlp, phrase = phrase_matcher(terms)
        build = time.perf_counter() - started
        add(
            "spaCy PhraseMatcher (LOWER)",
            SLOW_MB["PhraseMatcher"],
            lambda s: phrase_count(nlp, phrase, s),
            f"tokenizer incl., build {build:.1f} s",
        )
    return rows


REPEAT = 3  # the fast methods and the program run this often; the best time counts (neighbours only ever add time)


def _best(measure, fn, *args):
    runs = [measure(fn, *args) for _ in range(REPEAT)]
    return min(seconds for seconds, _ in runs), runs[-1][1]


def fast_methods(terms: list[str], docs: list[str], matcher: Matcher, work: Path) -> tuple[list[Row], dict]:
    n, mb = len(terms), _mb(docs)
    automaton = bare_automaton(terms)
    bare_s, _ = _best(_timed, bare_scan, automaton, docs)
    del automaton
    wall_s, _ = _best(_wall, matcher_count, matcher, docs)
    matcher_s, count = _best(_timed, matcher_count, matcher, docs)
    find_s, find_count = _best(_timed, matcher_find_count, matcher, docs)
    two_s, two_count = _best(_wall, matcher_processes, matcher, docs, 2)
    rows = [
        Row("bare pyahocorasick scan (peer, CPU s)", n, mb, bare_s, None, None, "raw hits discarded"),
        Row("matcher: normalize+scan+select+offsets (CPU s)", n, mb, matcher_s, count, count),
        Row("matcher via Matcher.find, Match objects (CPU s)", n, mb, find_s, find_count, count),
        Row("matcher, 1 process (wall)", n, mb, wall_s, count, count),
        Row("matcher, 2 processes (fork, wall)", n, mb, two_s, two_count, count),
    ]
    _print_rows(rows, rows[0].mb_s)
    extra: dict[str, float] = {}
    for workers in (1, 2):
        out = work / f"run-{n}-{workers}"
        runs = []
        for _ in range(REPEAT):
            shutil.rmtree(out, ignore_errors=True)  # a completed index would be a no-op
            load = os.getloadavg()[0]
            runs.append((*run_program(work / "shard.parquet", work / f"dict-{n}", out, workers), load))
        seconds, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        concepts, rss = runs[-1][2], max(r[3] for r in runs)
        loads = "/".join(f"{r[4]:.1f}" for r in runs)
        note = f"peak RSS {rss / 1024:.0f} MB (parent); best of {REPEAT}, load average {loads}"
        if workers == 1:
            rows.append(Row("program end to end, 1 process (CPU s)", n, mb, cpu, concepts, count, note))
        rows.append(Row(f"program end to end, {workers} process(es) (wall)", n, mb, seconds, concepts, count, note))
        _print_rows(rows[-1:], rows[0].mb_s)
        extra[f"program_{workers}_rss_mb"] = rss / 1024
    return rows, extra


def sentence_figures(docs: list[str]) -> dict[str, float]:
    sample = _prefix(docs, 5.0)
    splitter = SentenceSplitter()
    fast_s, fast = _timed(lambda: [splitter.starts(d) for d in sample])
    warm_s, _ = _timed(lambda: [splitter.starts(d) for d in sample])
    spacy_s, reference = _timed(lambda: list(spacy_sentence_starts(sample)))
    agree = sum(a == b for a, b in zip(fast, reference, strict=True))
    return {
        "mb": _mb(sample),
        "splitter_mb_s": _mb(sample) / fast_s,
        "splitter_warm_mb_s": _mb(sample) / warm_s,
        "spacy_mb_s": _mb(sample) / spacy_s,
        "docs": len(sample),
        "docs_agreeing": agree,
    }


def exported_figures(shard: Path, artifact: Path, out: Path, repeats: int = 3) -> dict:
    """`normalize_text` and the program (1 worker, concepts only) on a shard as the export writes it (title, abstract
    and body joined by a blank line), each against the same texts with one newline instead of the blank line (no
    whitespace run: the fast path's peer), in the same run; CPU seconds, best of `repeats`; and the sha256 of the
    program's concepts-0.parquet, which a change of the normalization's speed must not move."""
    from corpusbridge.extract.dictionary.normalize import normalize_text

    texts = [t for t in pq.read_table(shard, columns=["text"]).column("text").to_pylist() if t]
    one_newline = [t.replace("\n\n", "\n") for t in texts]
    out.mkdir(parents=True, exist_ok=True)
    peer_shard = out / "one-newline.parquet"
    table = pq.read_table(shard)
    column = pa.array([t.replace("\n\n", "\n") if t else t for t in table.column("text").to_pylist()], pa.string())
    pq.write_table(table.set_column(1, "text", column), peer_shard, row_group_size=ROW_GROUP_ROWS)
    figures: dict = {"docs": table.num_rows, "texts_with_blank_line": sum("\n\n" in t for t in texts)}
    for label, batch in (("exported", texts), ("one_newline", one_newline)):
        figures[f"normalize_{label}_s"] = round(_best(_timed, lambda b=batch: [normalize_text(t) for t in b])[0], 4)
    for label, path in (("exported", shard), ("one_newline", peer_shard)):
        runs = []
        for _ in range(repeats):
            shutil.rmtree(out / f"program-{label}", ignore_errors=True)  # a completed index would be a no-op
            runs.append(run_program(path, artifact, out / f"program-{label}", 1))
        figures[f"program_{label}_cpu_s"] = round(min(cpu for _, cpu, _, _ in runs), 3)
        figures[f"program_{label}_concepts"] = runs[0][2]
        digest = hashlib.sha256((out / f"program-{label}" / "concepts-0.parquet").read_bytes()).hexdigest()
        figures[f"program_{label}_concepts_sha256"] = digest
    figures["program_exported_docs_per_cpu_s"] = round(figures["docs"] / figures["program_exported_cpu_s"], 1)
    figures["normalize_exported_over_one_newline"] = round(
        figures["normalize_exported_s"] / figures["normalize_one_newline_s"], 2
    )
    figures["program_exported_over_one_newline"] = round(
        figures["program_exported_cpu_s"] / figures["program_one_newline_cpu_s"], 3
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=52.0)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--exported", type=Path, help="an exported shard: normalization and program figures only")
    parser.add_argument("--dictionary", type=Path, help="the dictionary artifact for --exported")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    # The program starts as an installed package does (pip, `uv --compile-bytecode`, the container): bytecode compiled.
    compileall.compile_dir(Path(corpusbridge.__file__).parent, quiet=1)
    if args.exported:
        load = os.getloadavg()[0]
        figures = exported_figures(args.exported, args.dictionary, OUT / "exported")
        print(json.dumps(figures | {"load_average": [load, os.getloadavg()[0]], "code": corpusbridge.__file__}))
        return
    words = gen_terms.vocabulary(200_000)
    all_terms = gen_terms.terms(max(sizes), words)
    docs = gen_terms.documents(int(args.mb * 1e6), words, all_terms[:1000])
    write_shard(docs, OUT / "shard.parquet")
    print(
        f"corpus: {len(docs)} docs, {_mb(docs):.1f} MB; cores: {len(os.sched_getaffinity(0))}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    report: dict = {"sentences": sentence_figures(docs), "sizes": {}}
    print(f"sentences: {report['sentences']}", flush=True)
    for n in sizes:
        terms = all_terms[:n]
        figures = dictionary_figures(terms, OUT)
        matcher = Matcher(load_dictionary(OUT / f"dict-{n}"))
        gc.freeze()  # as the program does after loading the dictionary
        rows, extra = fast_methods(terms, docs, matcher, OUT)
        rows += slow_methods(terms, docs, matcher)
        report["sizes"][n] = {**figures, **extra, "rows": [asdict(r) | {"mb_s": r.mb_s} for r in rows]}
        _print(n, figures, rows)
        del matcher
    (OUT / "report.json").write_text(json.dumps(report, indent=1))


def _print(n: int, figures: dict, rows: list[Row]) -> None:
    print(
        f"\n### {n:,} terms: build {figures['build_s']:.1f} s, artifact {figures['artifact_mb']:.0f} MB, "
        f"load {figures['load_s']:.2f} s (loader RSS {figures['load_rss_mb']:.0f} MB)"
    )
    print(
        "| method | MB | MB/s | x bare scan | matches | = matcher on same text | note |\n|---|---|---|---|---|---|---|"
    )
    _print_rows(rows, rows[0].mb_s)


def _print_rows(rows: list[Row], peer: float) -> None:
    for r in rows:
        same = "" if r.matches is None or r.reference is None else ("yes" if r.matches == r.reference else "NO")
        matches = "" if r.matches is None else r.matches
        print(
            f"| {r.method} | {r.mb:g} | {r.mb_s:.3g} | {r.mb_s / peer:.2f} | {matches} | {same} | {r.note} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
