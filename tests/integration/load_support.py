"""Real round-trip material for the load tests: exported shards, the real payload's results, the batch rows.

`register_batch` writes export_batches / export_batch_documents (and minimal clean_documents rows, for titles) the
way the export stage does, so the load can be tested on its own; the results come from the real payload
(`corpusbridge.extract.program.run_extract`, real dictionary automaton and real MiniLM vectors).
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusbridge.export.manifest import ExportManifest, ShardEntry, read_manifest, shard_path, write_manifest
from corpusbridge.export.schema import SHARD_SCHEMA, schema_fingerprint
from corpusbridge.extract.dictionary import build_dictionary, read_version
from corpusbridge.extract.program import run_extract, shard_from_manifest
from corpusbridge.hashing import file_sha256

WORDS = "the of patients with was and in study results lung cancer cell line tumor small cells growth asthma".split()
TERMS_V1 = {"lung": "C1", "lung cancer": "C2", "small cell lung cancer": "C3", "cell": "C4", "cell line": "C5"}
TERMS_V2 = {"lung cancer": "C2", "tumor": "C6", "asthma": "C7"}


@dataclass(frozen=True)
class Batch:
    manifest: Path
    results: Path
    batch_id: str
    dictionary_version: str
    doc_ids: list[str]


def corpus(docs: int, seed: int = 7) -> list[tuple[str, str | None, str | None, str | None]]:
    """(doc_id, exported text, title, abstract), the text composed as the export does (title, blank line,
    abstract); every 50th document has neither."""
    rng = random.Random(seed)
    rows: list[tuple[str, str | None, str | None, str | None]] = []
    for i in range(docs):
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))).capitalize() + "." for _ in range(3)
        ]
        title, abstract = f"Study {i} of lung cells", " ".join(sentences)
        if i % 50 == 7:
            rows.append((f"doc:{i:05d}", None, None, None))
        else:
            rows.append((f"doc:{i:05d}", f"{title}\n\n{abstract}", title, abstract))
    return rows


def write_terms(path: Path, terms: dict[str, str]) -> Path:
    path.write_text("concept_id\tterm\n" + "".join(f"{c}\t{t}\n" for t, c in terms.items()), encoding="utf-8")
    return path


def dictionary(root: Path, name: str, terms: dict[str, str]) -> Path:
    artifact = root / f"dictionary-{name}"
    build_dictionary(write_terms(root / f"terms-{name}.tsv", terms), artifact)
    return artifact


def write_export(folder: Path, batch_id: str, docs: list[tuple[str, str | None, str]], shard_rows: int) -> Path:
    """Shards of `shard_rows` documents in doc id order and their manifest, as the export writes them."""
    folder.mkdir(parents=True)
    entries = []
    for index, start in enumerate(range(0, len(docs), shard_rows)):
        part = docs[start : start + shard_rows]
        table = pa.table(
            {
                "doc_id": [d[0] for d in part],
                "text": [d[1] for d in part],
                "title": [d[2] for d in part],
                "year": pa.array([2020] * len(part), pa.int32()),
            },
            schema=SHARD_SCHEMA,
        )
        path = folder / f"shard-{index:05d}.parquet"
        pq.write_table(table, path, row_group_size=64, compression="zstd")
        entries.append(ShardEntry(index, path.name, len(part), file_sha256(path)))
    manifest = folder / "manifest.json"
    write_manifest(manifest, ExportManifest(batch_id, schema_fingerprint(SHARD_SCHEMA), entries))
    return manifest


def compute(manifest: Path, artifact: Path, out: Path, *, embeddings: bool, embedder: object = None) -> Path:
    """The real payload on every shard of the manifest."""
    for entry in read_manifest(manifest).shards:
        run_extract(
            shard_from_manifest(manifest, entry.index),
            artifact,
            out,
            embeddings=embeddings,
            embedder=embedder,  # type: ignore[arg-type]
            workers=1,
        )
    return out


def make_batch(
    root: Path, batch_id: str, docs: list, artifact: Path, *, shard_rows: int, embeddings: bool, embedder=None
) -> Batch:
    manifest = write_export(root / "export" / batch_id, batch_id, docs, shard_rows)
    results = compute(manifest, artifact, root / "results" / batch_id, embeddings=embeddings, embedder=embedder)
    return Batch(manifest, results, batch_id, read_version(artifact), [d[0] for d in docs])


def copy_batch(batch: Batch, root: Path) -> Batch:
    """A private copy of the results folder (tests corrupt files in it)."""
    results = root / f"results-{batch.batch_id}"
    shutil.copytree(batch.results, results)
    return Batch(batch.manifest, results, batch.batch_id, batch.dictionary_version, batch.doc_ids)


def register_batch(conn: psycopg.Connection, batch: Batch, *, clean_seq: int = 1) -> None:
    """The export stage's rows for a batch: export_batches, export_batch_documents, and clean_documents stubs."""
    manifest = read_manifest(batch.manifest)
    with conn.transaction():
        conn.execute(
            "INSERT INTO export_batches (batch_id, selection, dictionary_version, shard_count, rows, bytes, "
            "manifest_sha256, manifest_path) VALUES (%s, %s, %s, %s, %s, 0, %s, %s)",
            (
                batch.batch_id,
                json.dumps({"mode": "all"}),
                batch.dictionary_version,
                len(manifest.shards),
                manifest.rows,
                file_sha256(batch.manifest),
                str(batch.manifest),
            ),
        )
        for entry in manifest.shards:
            table = pq.read_table(shard_path(batch.manifest, entry), columns=["doc_id", "title", "text"])
            for doc_id, title, text in zip(*table.to_pydict().values(), strict=True):
                abstract = text.split("\n\n", 1)[-1] if text else None  # a text without a title is all abstract
                conn.execute(
                    "INSERT INTO export_batch_documents (batch_id, doc_id, shard, clean_seq) VALUES (%s, %s, %s, %s)",
                    (batch.batch_id, doc_id, entry.index, clean_seq),
                )
                conn.execute(
                    "INSERT INTO clean_documents (doc_id, source_format, title, abstract, language_from, "
                    "canonical_id, clean_hash, source_seq, run_id, code_version) "
                    "VALUES (%s, 'jsonl', %s, %s, 'none', %s, 'h', 1, 1, 'test') ON CONFLICT (doc_id) DO NOTHING",
                    (doc_id, title, abstract, doc_id),
                )


def rewrite_output(batch, index: int, name: str, table) -> None:
    """Replace one result file and record it in result-I.json as the payload would: the file verifies, its rows are
    what is wrong (a result from another export or another payload run)."""
    path = batch.results / f"result-{index}.json"
    entry = json.loads(path.read_text())
    output = batch.results / entry["outputs"][name]["path"]
    pq.write_table(table, output)
    entry["outputs"][name] |= {"rows": table.num_rows, "sha256": file_sha256(output)}
    path.write_text(json.dumps(entry, indent=2))


def add_stray_document(batch, index: int, doc_id: str = "doc:99999") -> None:
    """Shard `index`'s concept rows, one of them moved to `doc_id`, a document the export did not put there."""
    concepts = pq.read_table(batch.results / f"concepts-{index}.parquet")
    stray = concepts.slice(0, 1).set_column(0, concepts.schema.field(0), [[doc_id]])
    rewrite_output(batch, index, "concepts", pa.concat_tables([concepts.slice(1), stray]))


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = ("document_concepts", "document_vectors", "document_results", "load_ledger")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def output_rows(batch: Batch, name: str) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in batch.results.glob(f"{name}-*.parquet"))


@dataclass(frozen=True)
class RoundTrip:
    """Batch `first`: 240 documents in 2 shards, dictionary v1, with vectors. Batch `again`: the first 120 of them
    exported again and processed with dictionary v2, concepts only (a reprocess)."""

    first: Batch
    again: Batch
    root: Path


_BUILT: list[RoundTrip] = []


def build_round_trip(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    """Built once per test process (the payload with real vectors takes seconds), whichever module asks first."""
    if _BUILT:
        return _BUILT[0]
    from corpusbridge.extract.embeddings.embedder import EmbeddingOptions

    root = tmp_path_factory.mktemp("round-trip")
    docs = corpus(240)
    first = make_batch(
        root, "batch-a", docs, dictionary(root, "v1", TERMS_V1), shard_rows=120, embeddings=True,
        embedder=EmbeddingOptions().load(),
    )  # fmt: skip
    again = make_batch(root, "batch-b", docs[:120], dictionary(root, "v2", TERMS_V2), shard_rows=120, embeddings=False)
    _BUILT.append(RoundTrip(first, again, root))
    return _BUILT[0]
