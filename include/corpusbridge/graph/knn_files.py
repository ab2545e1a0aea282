"""The files of the kNN job: its input (the loaded vectors as Parquet) and its outputs (`neighbors-I.parquet` plus
`neighbors-I.json`, the part's entry with sha256 and rows, written last as the completion marker).

The input is written in doc_id order and named after its content (`vectors-<sha256[:16]>.parquet`), so the same
loaded vectors give the same file, the same SLURM job name and the same scratch folder: a rerun finds its work.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.hashing import file_sha256

if TYPE_CHECKING:  # the kNN payload imports this module on nodes: no database driver there
    import psycopg

PART_FORMAT = 1
FETCH_ROWS = 10_000
NEIGHBORS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("neighbor_id", pa.string(), nullable=False),
        pa.field("rank", pa.int16(), nullable=False),  # 1 = most similar
        pa.field("cosine", pa.float32(), nullable=False),
    ]
)
VECTORS_QUERY = "SELECT doc_id, embedding::real[] FROM document_vectors ORDER BY doc_id"


class KnnInputError(ValueError):
    """The kNN input cannot be used (too few vectors, damaged file); the message says what to do."""


@dataclass(frozen=True)
class KnnInput:
    """The exported vectors: the file, its sha256, rows and dimension."""

    path: Path
    sha256: str
    rows: int
    dimension: int


@dataclass(frozen=True)
class PartEntry:
    """One array index's result: rows `start:stop` of the input, their k neighbours each."""

    index: int
    parts: int
    k: int
    start: int
    stop: int
    input_sha256: str
    path: str  # neighbors-I.parquet, beside the entry
    sha256: str
    rows: int
    device: str
    seconds: float
    code_version: str
    format: int = PART_FORMAT

    def write(self, folder: Path) -> Path:
        target = folder / part_entry_name(self.index)
        _write_atomically(target, json.dumps(asdict(self), indent=1).encode())
        return target

    @classmethod
    def read(cls, path: Path) -> PartEntry:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def part_name(index: int) -> str:
    return f"neighbors-{index}.parquet"


def part_entry_name(index: int) -> str:
    return f"neighbors-{index}.json"


def part_range(rows: int, parts: int, index: int) -> tuple[int, int]:
    """Rows `start:stop` of array index `index` of `parts`: equal slices, the first ones one row longer."""
    size, extra = divmod(rows, parts)
    start = index * size + min(index, extra)
    return start, start + size + (1 if index < extra else 0)


def export_vectors(conn: psycopg.Connection, folder: Path) -> KnnInput:
    """Every loaded vector into `folder/vectors-<sha>.parquet` (doc_id, embedding), in doc_id order."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".vectors-{os.getpid()}.parquet"
    rows, dimension = 0, 0
    writer: pq.ParquetWriter | None = None
    try:
        with conn.cursor(name="knn_vectors") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(VECTORS_QUERY)
            while chunk := cursor.fetchmany(FETCH_ROWS):
                table = _vectors_table([r[0] for r in chunk], np.asarray([r[1] for r in chunk], dtype=np.float32))
                dimension = table.schema.field("embedding").type.list_size
                writer = writer or pq.ParquetWriter(temporary, table.schema)
                writer.write_table(table)
                rows += len(chunk)
    finally:
        if writer is not None:
            writer.close()
        conn.commit()
    if rows < 2:
        temporary.unlink(missing_ok=True)
        raise KnnInputError(
            f"document_vectors holds {rows} vector(s): the kNN graph needs at least 2; load results computed with "
            "embeddings first (`corpusbridge run`)"
        )
    sha = file_sha256(temporary)
    path = folder / f"vectors-{sha[:16]}.parquet"
    os.replace(temporary, path)
    return KnnInput(path, sha, rows, dimension)


def _vectors_table(doc_ids: list[str], matrix: np.ndarray) -> pa.Table:
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), pa.float32()), matrix.shape[1])
    return pa.table({"doc_id": pa.array(doc_ids, pa.string()), "embedding": embedding})


def read_vectors(path: Path, expected_sha256: str | None = None) -> tuple[list[str], np.ndarray]:
    """The input's doc ids and (n, d) float32 matrix; a file that does not hash to `expected_sha256` is refused."""
    if expected_sha256 is not None and file_sha256(path) != expected_sha256:
        raise KnnInputError(
            f"{path}: sha256 differs from the one the workstation exported ({expected_sha256[:12]}…): the staged "
            "file is damaged or partly copied; run the kNN job again (staging sends it again)"
        )
    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    width = column.type.list_size
    matrix = column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width).astype(np.float32, copy=False)
    return table.column("doc_id").to_pylist(), matrix


def verified_part(folder: Path, index: int, input_sha256: str, k: int, parts: int) -> PartEntry | None:
    """The part's entry when it was computed from this input with this k and split, and its Parquet is intact."""
    path = folder / part_entry_name(index)
    try:
        entry = PartEntry.read(path)
    except (OSError, ValueError, TypeError):
        return None
    if (entry.format, entry.index, entry.parts, entry.k, entry.input_sha256) != (
        PART_FORMAT,
        index,
        parts,
        k,
        input_sha256,
    ):
        return None
    if Path(entry.path).name != entry.path:  # an entry names a file beside it, never elsewhere on this machine
        return None
    target = folder / entry.path
    return entry if target.is_file() and file_sha256(target) == entry.sha256 else None


def write_part(folder: Path, index: int, table: pa.Table) -> tuple[str, str]:
    """`neighbors-I.parquet` written under a temporary name then renamed; returns (name, sha256)."""
    name = part_name(index)
    temporary = folder / f".{name}.{os.getpid()}"
    pq.write_table(table, temporary)
    sha = file_sha256(temporary)
    os.replace(temporary, folder / name)
    return name, sha


def _write_atomically(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, target)
