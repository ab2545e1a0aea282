"""The explicit pyarrow schema of an exported shard, and a fingerprint that names it in manifests."""

from __future__ import annotations

import hashlib

import pyarrow as pa

# Row groups are the unit of parallel work in the payload: keep them small enough that a shard has more row groups
# than a node has cores, and large enough to amortize Parquet overhead.
ROW_GROUP_ROWS = 2048

SHARD_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=True),
        pa.field("title", pa.string(), nullable=True),
        pa.field("year", pa.int32(), nullable=True),
    ]
)
REQUIRED_COLUMNS = ("doc_id", "text")


def schema_fingerprint(schema: pa.Schema) -> str:
    """sha256 of the fields (name, type, nullability) in order; metadata is ignored on purpose."""
    text = "\n".join(f"{f.name}:{f.type}:{'null' if f.nullable else 'notnull'}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()


def missing_columns(schema: pa.Schema) -> list[str]:
    """Required shard columns that are absent or not strings."""
    return [name for name in REQUIRED_COLUMNS if not _is_string_column(schema, name)]


def _is_string_column(schema: pa.Schema, name: str) -> bool:
    if schema.get_field_index(name) < 0:
        return False
    kind = schema.field(name).type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)
