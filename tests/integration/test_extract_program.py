"""The payload end to end on a generated shard: real Parquet in and out, real automaton, real processes."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusbridge.export.manifest import ExportManifest, ShardEntry, write_manifest
from corpusbridge.export.schema import SHARD_SCHEMA, schema_fingerprint
from corpusbridge.extract.dictionary import build_dictionary
from corpusbridge.extract.program import ExtractError, ShardInput, run_extract, shard_from_manifest
from corpusbridge.extract.results import ResultEntry
from corpusbridge.hashing import file_sha256

REPO = Path(__file__).resolve().parents[2]
WORDS = [
    "the",
    "of",
    "patients",
    "with",
    "was",
    "and",
    "in",
    "study",
    "results",
    "lung",
    "cancer",
    "cell",
    "line",
    "tumor",
    "small",
    "cells",
    "lines",
    "growth",
]
TERMS = {"lung": "C1", "lung cancer": "C2", "small cell lung cancer": "C3", "cell": "C4", "cell line": "C5"}


class HashingEmbedderDouble:
    """Stands in for the real model (another module): deterministic vectors from a hash of the text."""

    model_name = "hashing-double"
    model_hash = hashlib.sha256(b"hashing-double-v1").hexdigest()
    runtime = "hashing-double"
    dimension = 16

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: self.dimension], dtype=np.uint8) for t in texts]
        return (np.array(rows, dtype=np.float32) / 255.0).reshape(len(texts), self.dimension)


def _write_shard(path: Path, docs: int, seed: int, row_group_rows: int = 64) -> None:
    rng = random.Random(seed)
    texts = []
    for i in range(docs):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))).capitalize() + "." for _ in range(4)
        ]
        texts.append(None if i % 97 == 5 else " ".join(sentences))
    table = pa.table(
        {
            "doc_id": [f"doc-{i:06d}" for i in range(docs)],
            "text": texts,
            "title": [f"Title {i}" if i % 3 else None for i in range(docs)],
            "year": pa.array([2000 + i % 20 for i in range(docs)], pa.int32()),
        },
        schema=SHARD_SCHEMA,
    )
    pq.write_table(table, path, row_group_size=row_group_rows)


@pytest.fixture
def batch(tmp_path: Path) -> dict[str, Path]:
    shard = tmp_path / "export" / "shard-00000.parquet"
    shard.parent.mkdir()
    _write_shard(shard, 600, seed=1)
    manifest = tmp_path / "export" / "manifest.json"
    entry = ShardEntry(0, shard.name, 600, file_sha256(shard))
    write_manifest(manifest, ExportManifest("batch-1", schema_fingerprint(SHARD_SCHEMA), [entry]))
    terms = tmp_path / "terms.tsv"
    terms.write_text("concept_id\tterm\n" + "".join(f"{c}\t{t}\n" for t, c in TERMS.items()), encoding="utf-8")
    build_dictionary(terms, tmp_path / "dictionary")
    return {"manifest": manifest, "shard": shard, "dictionary": tmp_path / "dictionary", "root": tmp_path}


def _run(batch: dict[str, Path], out: str, **options) -> object:
    options.setdefault("embedder", HashingEmbedderDouble())
    return run_extract(shard_from_manifest(batch["manifest"], 0), batch["dictionary"], batch["root"] / out, **options)


def test_concepts_and_vectors_are_written_with_their_schemas_and_counts(batch) -> None:
    summary = _run(batch, "out", workers=2)
    out = batch["root"] / "out"
    concepts = pq.read_table(out / "concepts-0.parquet")
    vectors = pq.read_table(out / "vectors-0.parquet")
    assert concepts.schema.names == ["doc_id", "concept_id", "start", "end", "sentence", "matched"]
    assert vectors.schema.field("vector").type == pa.list_(pa.field("item", pa.float32(), nullable=False), 16)
    assert vectors.num_rows == summary.docs == 600 and summary.concepts == concepts.num_rows > 0
    entry = ResultEntry.read(out / "result-0.json")
    assert entry.input_sha256 == file_sha256(batch["shard"]) and entry.batch_id == "batch-1"
    assert entry.docs_without_text == 7 and entry.model_hash == HashingEmbedderDouble.model_hash
    assert entry.embedding_runtime == "hashing-double"
    assert entry.outputs["concepts"].sha256 == file_sha256(out / "concepts-0.parquet")
    texts = dict(zip(*pq.read_table(batch["shard"], columns=["doc_id", "text"]).to_pydict().values(), strict=True))
    for row in concepts.slice(0, 200).to_pylist():
        assert texts[row["doc_id"]][row["start"] : row["end"]] == row["matched"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_rerun_of_a_completed_index_is_a_no_op(batch) -> None:
    _run(batch, "out", workers=1)
    result = batch["root"] / "out" / "result-0.json"
    before = result.stat().st_mtime_ns
    embedder = HashingEmbedderDouble()
    summary = _run(batch, "out", workers=1, embedder=embedder)
    assert summary.status == "skipped" and embedder.calls == 0
    assert result.stat().st_mtime_ns == before


def test_outputs_are_byte_identical_across_reruns_and_worker_counts(batch) -> None:
    _run(batch, "one", workers=1)
    _run(batch, "two", workers=2)
    names = ("concepts-0.parquet", "vectors-0.parquet", "cooccurrence-0.parquet", "concept-docs-0.parquet")
    for name in (*names, "result-0.json"):
        assert (batch["root"] / "one" / name).read_bytes() == (batch["root"] / "two" / name).read_bytes()


def test_corrupted_input_is_detected_before_any_output(batch) -> None:
    data = bytearray(batch["shard"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    batch["shard"].write_bytes(bytes(data))
    with pytest.raises(ExtractError, match=r"shard-00000\.parquet: sha256 mismatch"):
        _run(batch, "out")
    assert not (batch["root"] / "out" / "result-0.json").exists()


def test_no_embeddings_writes_concepts_only(batch) -> None:
    summary = run_extract(ShardInput(batch["shard"], 3), batch["dictionary"], batch["root"] / "adhoc", embeddings=False)
    assert summary.vectors == 0
    assert sorted(p.name for p in (batch["root"] / "adhoc").iterdir()) == [
        "concept-docs-3.parquet", "concepts-3.parquet", "cooccurrence-3.parquet", "job-3.json",
        "result-3.json"]  # fmt: skip


def test_killed_run_leaves_no_half_file_and_a_rerun_completes(batch) -> None:
    big = batch["root"] / "big.parquet"
    _write_shard(big, 12_000, seed=2, row_group_rows=500)
    out = batch["root"] / "killed"
    command = [
        sys.executable,
        "-m",
        "corpusbridge.extract",
        "--input",
        str(big),
        "--dictionary",
        str(batch["dictionary"]),
        "--out",
        str(out),
        "--no-embeddings",
        "--workers",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(out.glob(".concepts-0.parquet.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "concepts-0.parquet").exists() and not (out / "result-0.json").exists()
    finished = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, check=True)
    assert '"status": "done"' in finished.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "concept-docs-0.parquet", "concepts-0.parquet", "cooccurrence-0.parquet", "job-0.json",
        "result-0.json"]  # fmt: skip
    assert pq.read_metadata(out / "concepts-0.parquet").num_rows > 0


def test_real_embedder_end_to_end(batch) -> None:
    """Enable-after-merge check: the real model behind load_embedder, through the whole program."""
    try:
        from corpusbridge.extract.embeddings.embedder import load_embedder
    except ImportError:
        pytest.skip("embeddings/embedder.py not present yet")
    embedder = load_embedder()
    summary = _run(batch, "real", workers=1, embedder=embedder)
    vectors = pq.read_table(batch["root"] / "real" / "vectors-0.parquet")
    assert summary.vectors == vectors.num_rows == 600
    assert vectors.schema.field("vector").type.list_size == embedder.dimension
    entry = ResultEntry.read(batch["root"] / "real" / "result-0.json")
    assert (entry.model_hash, entry.embedding_runtime) == (embedder.model_hash, "numpy")


class FailingEmbedderDouble(HashingEmbedderDouble):
    """The model breaks partway through the shard (a GPU out of memory, say)."""

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.calls == 1:
            raise RuntimeError("CUDA out of memory (double)")
        return super().embed(texts)


def test_an_embedding_failure_publishes_nothing_and_leaves_no_temp_file(batch) -> None:
    shard = batch["root"] / "many-batches.parquet"
    _write_shard(shard, 3000, seed=4, row_group_rows=1500)  # 3 read batches: the second one fails
    out = batch["root"] / "failed"
    with pytest.raises(RuntimeError, match="out of memory"):
        run_extract(ShardInput(shard, 0), batch["dictionary"], out, embedder=FailingEmbedderDouble(), workers=2)
    assert list(out.iterdir()) == []
    summary = run_extract(ShardInput(shard, 0), batch["dictionary"], out, embedder=HashingEmbedderDouble(), workers=2)
    assert summary.status == "done" and summary.vectors == 3000


def test_a_matching_failure_stops_the_vectors_thread_and_publishes_nothing(batch) -> None:
    """The vectors are computed on a thread while the main thread matches; an error there must stop both."""
    shard = batch["root"] / "null-id.parquet"
    ids = [f"doc-{i}" for i in range(3000)]
    ids[2500] = None  # in the second row group: the vectors thread is well under way by then
    texts = ["Lung cancer cells. Small cell lung cancer."] * 3000
    table = pa.table({"doc_id": pa.array(ids, pa.string()), "text": texts})
    pq.write_table(table, shard, row_group_size=1500)
    out = batch["root"] / "null-id"
    with pytest.raises(ExtractError, match="null doc_id"):
        run_extract(ShardInput(shard, 0), batch["dictionary"], out, embedder=HashingEmbedderDouble(), workers=1)
    assert list(out.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("corpusbridge-embed")]


def test_worker_results_pass_through_a_temp_folder_that_is_removed_on_success_and_failure(batch, monkeypatch) -> None:
    spool_root = batch["root"] / "tmpdir"
    spool_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_root))  # what $TMPDIR sets
    _run(batch, "spooled", workers=2, embeddings=False)
    assert list(spool_root.iterdir()) == []
    shard = batch["root"] / "null-id-2.parquet"
    ids = [f"doc-{i}" for i in range(3000)]
    ids[2500] = None  # raised in a forked worker, re-raised in the parent
    table = pa.table({"doc_id": pa.array(ids, pa.string()), "text": ["Lung cancer cells."] * 3000})
    pq.write_table(table, shard, row_group_size=1500)
    out = batch["root"] / "null-id-2"
    with pytest.raises(ExtractError, match="null doc_id"):
        run_extract(ShardInput(shard, 0), batch["dictionary"], out, embeddings=False, workers=2)
    assert list(out.iterdir()) == [] and list(spool_root.iterdir()) == []


def test_fast_sentence_splitter_gives_the_same_rows_as_the_full_spacy_pipeline(batch) -> None:
    _run(batch, "fast", workers=1, embeddings=False)
    _run(batch, "spacy", workers=1, embeddings=False, sentence_mode="spacy")
    fast = pq.read_table(batch["root"] / "fast" / "concepts-0.parquet")
    assert fast.equals(pq.read_table(batch["root"] / "spacy" / "concepts-0.parquet"))
    assert max(fast.column("sentence").to_pylist()) == 3


def test_payload_process_keeps_spacy_out_maps_with_numpy_and_writes_the_same_bytes(batch) -> None:
    """`python -m corpusbridge.extract --no-embeddings` keeps spaCy off its import path (its import alone cost more
    CPU than matching a small shard) but lets numpy in, so the graph's map runs vectorized (the plain-Python map cost
    more than numpy's import on any shard above ~2,000 documents); it writes what the library writes."""
    _run(batch, "library", workers=1, embeddings=False)
    command = [sys.executable, "-X", "importtime", "-m", "corpusbridge.extract", "--manifest", str(batch["manifest"])]
    command += ["--index", "0", "--dictionary", str(batch["dictionary"]), "--out", str(batch["root"] / "process")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    finished = subprocess.run([*command, "--no-embeddings"], env=env, capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in finished.stderr.splitlines() if "|" in line}
    assert "spacy" not in imported
    assert {"numpy", "corpusbridge.extract.cooccurrence"} <= imported
    assert "corpusbridge.extract.cooccurrence_plain" not in imported
    for name in ("concepts-0.parquet", "cooccurrence-0.parquet", "concept-docs-0.parquet"):
        assert (batch["root"] / "process" / name).read_bytes() == (batch["root"] / "library" / name).read_bytes()


def test_a_dictionary_rebuilt_in_place_is_loaded_again(batch) -> None:
    """The program keeps its last dictionary loaded; a new version at the same path must not be served from it."""
    first = _run(batch, "before", workers=1, embeddings=False)
    terms = batch["root"] / "terms.tsv"
    terms.write_text("concept_id\tterm\nC9\ttumor\n", encoding="utf-8")
    build_dictionary(terms, batch["dictionary"])
    second = _run(batch, "after", workers=1, embeddings=False)
    assert first.dictionary_version != second.dictionary_version
    concepts = pq.read_table(batch["root"] / "after" / "concepts-0.parquet").column("concept_id").to_pylist()
    assert set(concepts) == {"C9"}


def test_a_row_group_split_across_workers_gives_the_same_bytes(batch) -> None:
    """One big row group is matched in parts by 2 workers and merged back: the file must not show it."""
    shard = batch["root"] / "one-group.parquet"
    _write_shard(shard, 2500, seed=3, row_group_rows=2500)
    for workers in (1, 2):
        run_extract(
            ShardInput(shard, 0),
            batch["dictionary"],
            batch["root"] / f"split-{workers}",
            workers=workers,
            embeddings=False,
        )
    one, two = ((batch["root"] / f"split-{w}" / "concepts-0.parquet").read_bytes() for w in (1, 2))
    assert one == two
    assert pq.read_metadata(batch["root"] / "split-2" / "concepts-0.parquet").num_row_groups == 1


def test_payload_process_runs_the_full_spacy_pipeline_without_embeddings(batch) -> None:
    """`--sentences spacy` imports spaCy (and its numpy) in the payload process: same bytes as the fast splitter."""
    _run(batch, "fast-library", workers=1, embeddings=False)
    command = [sys.executable, "-m", "corpusbridge.extract", "--manifest", str(batch["manifest"]), "--index", "0"]
    command += ["--dictionary", str(batch["dictionary"]), "--out", str(batch["root"] / "spacy-process")]
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    subprocess.run([*command, "--no-embeddings", "--sentences", "spacy", "--json"], env=env, check=True)
    library = (batch["root"] / "fast-library" / "concepts-0.parquet").read_bytes()
    assert (batch["root"] / "spacy-process" / "concepts-0.parquet").read_bytes() == library


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (from /proc; zombies count as gone)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_killing_the_payload_process_takes_its_matching_workers_with_it(batch) -> None:
    """kill -9 (the OOM killer, scancel --signal=KILL) leaves no orphaned worker holding memory and a core.

    The workers are stopped (SIGSTOP) before the kill: that stands for a worker deep in a long unit, which would only
    notice its parent's death at the task queue, after the unit. Only the kernel's death signal reaches it there.
    """
    big = batch["root"] / "big-for-workers.parquet"
    _write_shard(big, 12_000, seed=5, row_group_rows=500)
    out = batch["root"] / "killed-workers"
    command = [sys.executable, "-m", "corpusbridge.extract", "--input", str(big), "--out", str(out)]
    # The full spaCy pipeline: slow enough per document that the workers are still matching when they are seen.
    command += ["--dictionary", str(batch["dictionary"]), "--no-embeddings", "--sentences", "spacy", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "include")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and process.poll() is None and time.monotonic() < deadline:
            workers |= _children(process.pid)
            time.sleep(0.005)
        process.send_signal(signal.SIGSTOP)  # the pool can no longer finish and reap its workers
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        assert len(workers) == 2 and all(_alive(pid) for pid in workers), "workers not seen: use a bigger shard"
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not (out / "result-0.json").exists()
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in workers if _alive(pid)] == []
    finally:
        process.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)  # a failed run of this test leaves nothing behind either
