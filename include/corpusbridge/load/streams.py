"""Result Parquet files streamed into COPY, one record batch at a time (bounded memory whatever the shard size).

Concepts go as CSV written by Arrow's C++ writer (no Python per row). Vectors go as binary COPY: pgvector's binary
form is a 2-byte dimension, 2 unused bytes and big-endian float4s, so a whole batch converts with one numpy call
and each row is a few byte concatenations; the text form `[0.1,...]` would format and parse 384 decimals per row.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from corpusbridge.load import statements

VECTOR_DIMENSION = 384  # document_vectors.embedding is vector(384)
BATCH_ROWS = 16_384
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_BINARY_TRAILER = struct.pack(">h", -1)


class ResultFormatError(ValueError):
    """A verified result file whose content the database cannot take (e.g. vectors of another dimension)."""


def copy_concepts(conn: psycopg.Connection, path: Path) -> int:
    """COPY a concepts-I.parquet into the staging table; returns the rows sent."""
    rows = 0
    options = pacsv.WriteOptions(include_header=False)
    with conn.cursor().copy(statements.COPY_CONCEPTS) as copy:
        for batch in pq.ParquetFile(path).iter_batches(
            batch_size=BATCH_ROWS, columns=["doc_id", "concept_id", "start", "end", "sentence", "matched"]
        ):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, options)
            copy.write(buffer.getbuffer())
            rows += batch.num_rows
    return rows


def copy_vectors(conn: psycopg.Connection, path: Path) -> int:
    """COPY a vectors-I.parquet into the staging table (binary pgvector values); returns the rows sent."""
    source = pq.ParquetFile(path)
    _check_dimension(path, source.schema_arrow)
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
