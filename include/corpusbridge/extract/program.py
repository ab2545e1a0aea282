"""The cluster payload for one shard: verify, match concepts, embed, write Parquet, then the result entry.

Crash safety: outputs are written under temp names and renamed; the result entry is written last and is the
completion marker, so a killed run leaves no half file and a rerun of a completed index is a no-op. Parallelism:
row groups (or parts of them) are the units of work, matched by forked workers that share the loaded automaton
copy-on-write; results are written per row group and in order, so the bytes do not depend on the number of workers.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from corpusbridge.config import worker_count
from corpusbridge.export.manifest import read_manifest, shard_path, write_json_atomic
from corpusbridge.export.schema import missing_columns
from corpusbridge.extract.concepts.matcher import Matcher
from corpusbridge.extract.cooccurrence import CooccurrenceCounter, concept_docs_name, cooccurrence_name, new_counter
from corpusbridge.extract.dictionary.artifact import Dictionary, load_dictionary, read_version
from corpusbridge.extract.results import (
    CONCEPTS_SCHEMA,
    EXTRACTION_RULES,
    OutputFile,
    ResultEntry,
    concepts_name,
    job_name,
    parquet_writer,
    result_name,
    vectors_name,
    vectors_schema,
    where_computed,
)
from corpusbridge.extract.vectors import VectorsThread
from corpusbridge.extract.workers import ExtractError, RowGroupWorker, ordered_results, plan_units
from corpusbridge.hashing import BackgroundSha256, file_sha256
from corpusbridge.version import code_version

if TYPE_CHECKING:
    from corpusbridge.extract.embeddings.embedder import Embedder, EmbeddingOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardInput:
    path: Path
    index: int
    expected_sha256: str | None = None
    expected_rows: int | None = None
    batch_id: str | None = None


@dataclass
class ExtractSummary:
    index: int
    status: str  # "done" or "skipped" (already complete)
    docs: int
    concepts: int
    vectors: int
    dictionary_version: str
    result: str
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float | None = None  # this process (Linux VmHWM); forked workers share its pages


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def image_digest() -> str | None:
    """The container image's digest (sha256:<hex>) when the payload runs in one: the job script exports it into the
    container (hpc/script.py; the sandbox runner sets it itself). None outside a container."""
    return os.environ.get("CORPUSBRIDGE_IMAGE_DIGEST", "").strip() or None


def shard_from_manifest(manifest: Path, index: int) -> ShardInput:
    loaded = read_manifest(manifest)
    if loaded.extraction_rules not in (None, EXTRACTION_RULES):
        # Another corpusbridge on the nodes than on the workstation: it would find other concepts than the batch id
        # promises, and a reprocess could never replace them.
        raise ExtractError(
            f"{manifest}: batch {loaded.batch_id} was exported for extraction rules {loaded.extraction_rules}, this "
            f"payload applies rules {EXTRACTION_RULES}: install the workstation's corpusbridge version where the "
            "payload runs (the cluster's python, or the image)"
        )
    entry = loaded.shard(index)
    return ShardInput(shard_path(manifest, entry), index, entry.sha256, entry.rows, loaded.batch_id)


# --- the run ------------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    shard: ShardInput
    out_dir: Path
    input_sha256: str = ""
    rows: int = 0
    row_groups: int = 0
    group_rows: list[int] = field(default_factory=list)
    has_title: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def tmp(self, name: str) -> Path:
        return self.out_dir / f".{name}.tmp-{os.getpid()}"

    def clock(self, step: str, started: float) -> None:
        self.timings[step] = round(time.perf_counter() - started, 3)


def run_extract(
    shard: ShardInput,
    dictionary: Path,
    out_dir: Path,
    *,
    embeddings: bool = True,
    embedder: Embedder | None = None,
    embedding: EmbeddingOptions | None = None,
    workers: int | None = None,
    sentence_mode: str = "fast",
) -> ExtractSummary:
    """Process one shard; see the module docstring for the guarantees.

    Vectors come from `embedder` when given, else from a model loaded with `embedding` (default: the numpy
    runtime), and only once the shard is known to need processing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(shard, out_dir)
    started = time.perf_counter()
    version = read_version(dictionary)
    done = _completed(run, version, embeddings)
    if done is not None:
        return _summary(done, "skipped", out_dir, run.timings)
    _remove_stale_temps(out_dir, shard.index)
    input_digest = _check_input(run)
    if embeddings and embedder is None:
        from corpusbridge.extract.embeddings.embedder import EmbeddingOptions

        embedder = (embedding or EmbeddingOptions()).load()
        log.info(
            "embeddings: %s, runtime %s, batches of %d", embedder.model_name, embedder.runtime, embedder.batch_size
        )
    try:
        entry = _process(
            run, dictionary, input_digest, embedder if embeddings else None, workers or worker_count(), sentence_mode
        )
    except BaseException:
        for name in _output_names(shard.index):
            run.tmp(name).unlink(missing_ok=True)  # a failed run publishes nothing and leaves nothing behind
        raise
    write_json_atomic(out_dir / job_name(shard.index), where_computed())  # before the completion marker
    entry.write(out_dir / result_name(shard.index))
    run.clock("total", started)
    return _summary(entry, "done", out_dir, run.timings)


def _summary(entry: ResultEntry, status: str, out_dir: Path, timings: dict[str, float]) -> ExtractSummary:
    vectors = entry.outputs.get("vectors")
    return ExtractSummary(
        index=entry.index,
        status=status,
        docs=entry.input_rows,
        concepts=entry.outputs["concepts"].rows,
        vectors=vectors.rows if vectors else 0,
        dictionary_version=entry.dictionary_version,
        result=str(out_dir / result_name(entry.index)),
        seconds=timings,
        peak_rss_mb=_peak_rss_mb(),
    )


def _completed(run: _Run, version: str, embeddings: bool) -> ResultEntry | None:
    """The existing result entry if this index already completed with the same inputs and intact outputs."""
    path = run.out_dir / result_name(run.shard.index)
    if not path.exists():
        return None
    entry = ResultEntry.read(path)
    # An ad-hoc --input has no manifest checksum: compare with the file itself, so an edited input is redone.
    expected = run.shard.expected_sha256 or (file_sha256(run.shard.path) if run.shard.path.is_file() else None)
    if expected and entry.input_sha256 != expected:
        raise ExtractError(
            f"{path}: completed for input sha256 {entry.input_sha256}, but the input now has {expected}; "
            "write to a new --out folder"
        )
    if entry.dictionary_version != version:
        raise ExtractError(
            f"{path}: completed with dictionary {entry.dictionary_version[:12]}, asked for "
            f"{version[:12]}; write to a new --out folder"
        )
    if ("vectors" in entry.outputs) != embeddings:
        log.info("%s: completed %s vectors; processing the shard again", path, "with" if not embeddings else "without")
        return None
    for output in entry.outputs.values():
        target = run.out_dir / output.path
        if not target.exists() or file_sha256(target) != output.sha256:
            log.warning("%s: output %s missing or changed; processing the shard again", path, target)
            return None
    return entry


def _output_names(index: int) -> tuple[str, ...]:
    return (concepts_name(index), vectors_name(index), cooccurrence_name(index), concept_docs_name(index))


def _remove_stale_temps(out_dir: Path, index: int) -> None:
    """Temp files of a killed earlier run of this index: never renamed, so never trusted."""
    for name in (*_output_names(index), result_name(index)):
        for stale in out_dir.glob(f".{name}.tmp-*"):
            stale.unlink(missing_ok=True)


def _check_input(run: _Run) -> BackgroundSha256:
    """Check the shard's layout and start hashing it; `_verify_sha256` checks the hash before any row is read (the
    dictionary and the model load meanwhile)."""
    shard = run.shard
    if not shard.path.is_file():
        raise ExtractError(f"{shard.path}: input shard not found; stage it (or check --manifest/--index)")
    digest = BackgroundSha256(shard.path)
    metadata = pq.ParquetFile(shard.path).metadata
    missing = missing_columns(metadata.schema.to_arrow_schema())
    if missing:
        raise ExtractError(f"{shard.path}: missing string column(s) {missing}; export the shard with doc_id and text")
    run.rows = metadata.num_rows
    run.row_groups = metadata.num_row_groups
    run.group_rows = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    run.has_title = "title" in metadata.schema.names
    if shard.expected_rows is not None and run.rows != shard.expected_rows:
        raise ExtractError(f"{shard.path}: {run.rows} rows, manifest says {shard.expected_rows}; stage it again")
    return digest


def _verify_sha256(run: _Run, digest: BackgroundSha256) -> None:
    shard = run.shard
    run.input_sha256 = digest.result()
    if shard.expected_sha256 and run.input_sha256 != shard.expected_sha256:
        raise ExtractError(
            f"{shard.path}: sha256 mismatch (expected {shard.expected_sha256}, got {run.input_sha256}); "
            "the shard is corrupt or stale: stage it again"
        )


# The last loaded dictionary stays loaded: freeing a 1M-term automaton costs ~0.4 s of CPU (21M nodes, measured), which
# `python -m corpusbridge.extract` skips by exiting without teardown, and a process that runs several shards with one
# artifact loads it once.
_LOADED: dict[tuple[Path, str], Dictionary] = {}


def _loaded_dictionary(path: Path) -> Dictionary:
    key = (path.resolve(), read_version(path))
    if key not in _LOADED:
        _LOADED.clear()  # at most one: the previous automaton is freed before the next one is loaded
        _LOADED[key] = load_dictionary(path)
    return _LOADED[key]


def _process(
    run: _Run,
    dictionary_path: Path,
    input_digest: BackgroundSha256,
    embedder: Embedder | None,
    processes: int,
    mode: str,
) -> ResultEntry:
    started = time.perf_counter()
    dictionary = _loaded_dictionary(dictionary_path)
    run.clock("load_dictionary", started)
    matcher = Matcher(dictionary)
    log.info(
        "dictionary %s: %d keys, loaded in %.2f s, scanned with %s",
        dictionary.version[:12],
        len(dictionary.infos),
        dictionary.load_seconds,
        matcher.engine,
    )
    worker = RowGroupWorker(run.shard.path, matcher, mode)
    started = time.perf_counter()
    _verify_sha256(run, input_digest)
    run.clock("verify_wait", started)
    # The dictionary's millions of objects live as long as the process: keep the cyclic GC from rescanning them
    # (measured ~25% of matcher time at 100k terms) and from touching their pages in forked workers (copy-on-write).
    gc.freeze()
    units = plan_units(run.group_rows, processes)
    index = run.shard.index
    concepts_tmp = run.tmp(concepts_name(index))
    vectors_tmp = run.tmp(vectors_name(index))
    concept_rows = docs = without_text = 0
    graph = new_counter()
    map_seconds = 0.0
    started = time.perf_counter()
    concepts = parquet_writer(concepts_tmp, CONCEPTS_SCHEMA)
    vectors = parquet_writer(vectors_tmp, vectors_schema(embedder.dimension)) if embedder else None
    try:
        thread = None
        if embedder is not None and vectors is not None:
            thread = VectorsThread(run.shard.path, run.has_title, embedder, vectors)
        with thread or nullcontext() as embedding:
            for result in ordered_results(worker, units, min(processes, len(units))):
                if embedding is not None:
                    embedding.start()  # after the first result: the matching workers are forked by then
                if result.table.num_rows:
                    concepts.write_table(result.table)
                    map_started = time.perf_counter()
                    graph.add(result.table)
                    map_seconds += time.perf_counter() - map_started
                concept_rows += result.table.num_rows
                docs += result.docs
                without_text += result.without_text
            vector_rows = embedding.finish() if embedding is not None else 0
    finally:
        concepts.close()
        if vectors is not None:
            vectors.close()
    run.clock("process", started)
    _reconcile(run, docs, vector_rows, embedder is not None)
    outputs = {"concepts": _publish(run, concepts_tmp, concepts_name(index), concept_rows)}
    if embedder is not None:
        outputs["vectors"] = _publish(run, vectors_tmp, vectors_name(index), vector_rows)
    started = time.perf_counter()
    outputs.update(_publish_graph(run, graph, docs))
    run.timings["cooccurrence"] = round(map_seconds + time.perf_counter() - started, 3)
    return ResultEntry(
        index=index,
        batch_id=run.shard.batch_id,
        input_path=run.shard.path.name,
        input_sha256=run.input_sha256,
        input_rows=docs,
        docs_without_text=without_text,
        dictionary_version=dictionary.version,
        model_name=embedder.model_name if embedder else None,
        model_hash=embedder.model_hash if embedder else None,
        code_version=code_version(),
        outputs=outputs,
        extraction_rules=EXTRACTION_RULES,
        embedding_runtime=embedder.runtime if embedder else None,
        image_digest=image_digest(),
    )


def _publish_graph(run: _Run, graph: CooccurrenceCounter, docs: int) -> dict[str, OutputFile]:
    """The shard's partial graph counts (extract/cooccurrence.py), published like the concepts."""
    index = run.shard.index
    pairs_tmp, concepts_tmp = run.tmp(cooccurrence_name(index)), run.tmp(concept_docs_name(index))
    pair_rows, concept_rows = graph.write(pairs_tmp, concepts_tmp, docs=docs)
    return {
        "cooccurrence": _publish(run, pairs_tmp, cooccurrence_name(index), pair_rows),
        "concept_docs": _publish(run, concepts_tmp, concept_docs_name(index), concept_rows),
    }


def _reconcile(run: _Run, docs: int, vector_rows: int, embeddings: bool) -> None:
    """Counts must reconcile: every input row was read, and every one got a vector."""
    if docs != run.rows or (embeddings and vector_rows != docs):
        raise ExtractError(
            f"{run.shard.path}: counts do not reconcile (rows {run.rows}, read {docs}, vectors {vector_rows}); "
            "nothing was published: re-run the index"
        )


def _publish(run: _Run, tmp: Path, name: str, rows: int) -> OutputFile:
    """fsync then rename: after this the file is complete under its final name."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    digest = file_sha256(tmp)
    os.replace(tmp, run.out_dir / name)
    return OutputFile(name, rows, digest)
