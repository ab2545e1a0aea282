"""Result Parquet files streamed into COPY, one record batch at a time (bounded memory whatever the shard size).

Concepts go as CSV written by Arrow's C++ writer (no Python per row), straight into document_concepts with the
batch and shard appended as constant columns: a temporary table plus `INSERT ... SELECT` wrote every row twice and
was the largest single cost of the load (bench/RESULTS.md). What the load must check before it writes (which
documents a result names, how many (document, concept) pairs it holds) is read from the Parquet in Arrow instead.
Vectors go as binary COPY: pgvector's binary form is a 2-byte dimension, 2 unused bytes and big-endian float4s, so
a whole batch converts with one numpy call and each row is a few byte concatenations; the text form `[0.1,...]`
would format and parse 384 decimals per row.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from corpusbridge.load import statements

VECTOR_DIMENSION = 384  # document_vectors.embedding is vector(384)
BATCH_ROWS = 16_384
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_BINARY_TRAILER = struct.pack(">h", -1)
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False)


class ResultFormatError(ValueError):
    """A verified result file whose content the database cannot take (e.g. vectors of another dimension)."""


@dataclass(frozen=True)
class ResultContents:
    """What a shard's result files hold, read before a row is written: the documents they name (concepts and
    vectors) and the distinct (document, concept) pairs of the concept rows (what the graph partial must count)."""

    doc_ids: list[str]
    concept_docs: int


def read_contents(concepts: Path, vectors: Path | None) -> ResultContents:
    """Two columns of one shard's concept rows in Arrow (a shard is bounded by the export's `shard_rows`)."""
    table = pq.read_table(concepts, columns=["doc_id", "concept_id"])
    concept_docs = table.group_by(["doc_id", "concept_id"]).aggregate([]).num_rows
    ids = [table.column("doc_id")]
    if vectors is not None:
        ids.append(pq.read_table(vectors, columns=["doc_id"]).column("doc_id"))
    chunks = [chunk.cast(pa.string()) for column in ids for chunk in column.chunks]
    unique = pc.unique(pa.chunked_array(chunks, pa.string()))
    return ResultContents(doc_ids=sorted(unique.to_pylist()), concept_docs=concept_docs)


def copy_csv(conn: psycopg.Connection, statement: str, batches: Iterable[pa.RecordBatch]) -> int:
    """COPY record batches as CSV written by Arrow's C++ writer (no Python per row); returns the rows sent."""
    rows = 0
    with conn.cursor().copy(statement) as copy:  # type: ignore[arg-type]
        for batch in batches:
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, _CSV_OPTIONS)
            copy.write(buffer.getbuffer())
            rows += batch.num_rows
    return rows


def copy_concepts(conn: psycopg.Connection, path: Path, *, batch_id: str, shard: int) -> int:
    """COPY a concepts-I.parquet straight into document_concepts, every row tagged with its batch and shard;
    returns the rows written."""
    return copy_csv(conn, statements.COPY_CONCEPTS, _tagged(path, batch_id, shard))


def _tagged(path: Path, batch_id: str, shard: int) -> Iterator[pa.RecordBatch]:
    columns = ["doc_id", "concept_id", "start", "end", "sentence", "matched"]
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
        n = batch.num_rows
        batch = batch.append_column("batch_id", pa.repeat(pa.scalar(batch_id), n))
        yield batch.append_column("shard", pa.repeat(pa.scalar(shard, pa.int32()), n))


def copy_vectors(conn: psycopg.Connection, path: Path) -> int:
    """COPY a vectors-I.parquet into a temporary `load_vectors_temp` (binary pgvector values); returns the rows
    sent. Not straight into document_vectors: `INSERT ... SELECT` adds the batch and shard to the binary rows."""
    source = pq.ParquetFile(path)
    _check_dimension(path, source.schema_arrow)
    conn.execute(statements.CREATE_VECTORS_TEMP)
    rows = 0
    with conn.cursor().copy(statements.COPY_VECTORS) as copy:
        copy.write(_BINARY_HEADER)
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=["doc_id", "vector"]):
            copy.write(_binary_rows(batch))
            rows += batch.num_rows
        copy.write(_BINARY_TRAILER)
    return rows


def _check_dimension(path: Path, schema: pa.Schema) -> None:
    kind = schema.field("vector").type
    size = getattr(kind, "list_size", None)
    if size != VECTOR_DIMENSION:
        raise ResultFormatError(
            f"{path.name}: vectors of dimension {size}, but document_vectors holds {VECTOR_DIMENSION}; "
            "compute the batch with the 384-dimension model (all-MiniLM-L6-v2)"
        )


def _binary_rows(batch: pa.RecordBatch) -> bytes:
    ids = batch.column(0).to_pylist()
    values = batch.column(1).flatten().to_numpy(zero_copy_only=False).astype(">f4")
    width = 4 * VECTOR_DIMENSION
    data = values.tobytes()
    vector_head = struct.pack(">ihh", 4 + width, VECTOR_DIMENSION, 0)
    parts = []
    for row, doc_id in enumerate(ids):
        raw = doc_id.encode()
        parts.append(struct.pack(">hi", 2, len(raw)) + raw + vector_head + data[row * width : (row + 1) * width])
    return b"".join(parts)
