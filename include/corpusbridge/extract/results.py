"""What the payload writes: explicit Parquet schemas and the result manifest entry (the completion marker)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.export.manifest import write_json_atomic

RESULT_FORMAT = 1
# What the payload finds in a text, given the dictionary and the model: raise it whenever a matching or sentence rule
# changes, so that the same documents make a new export batch and `--reprocess` replaces the rows the old rules made
# (a batch of the same id is loaded once and never again). 2: a blank line ends a sentence, and no term spans one.
EXTRACTION_RULES = 2

CONCEPTS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("concept_id", pa.string(), nullable=False),
        # Python string offsets (code points, end exclusive) into the exported text.
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("sentence", pa.int32(), nullable=False),
        pa.field("matched", pa.string(), nullable=False),
    ]
)


def vectors_schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.field("item", pa.float32(), nullable=False), dimension), nullable=False),
        ]
    )


def concepts_name(index: int) -> str:
    return f"concepts-{index}.parquet"


def vectors_name(index: int) -> str:
    return f"vectors-{index}.parquet"


def result_name(index: int) -> str:
    return f"result-{index}.json"


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """Fixed writer settings: the same rows give the same bytes on every rerun."""
    return pq.ParquetWriter(path, schema, compression="zstd", compression_level=3, write_statistics=True)


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the result entry's folder
    rows: int
    sha256: str


def job_name(index: int) -> str:
    """Where the shard was computed (`job-I.json`): beside the result, but no part of it. The same inputs give the
    same result files on every backend; this file says which backend, SLURM job and host did the work."""
    return f"job-{index}.json"


def where_computed() -> dict[str, str | None]:
    """The backend, SLURM job (`<array job>_<index>`, or the job id) and host of this process."""
    import socket

    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    return {
        "backend": "slurm" if job else "local",
        "slurm_job": (f"{job}_{task}" if task else job) if job else None,
        "host": os.environ.get("SLURMD_NODENAME") or socket.gethostname(),
    }


@dataclass(frozen=True)
class ResultEntry:
    """One shard's result: counts reconcile (docs = input rows = vector rows when embeddings are on)."""

    index: int
    batch_id: str | None
    input_path: str
    input_sha256: str
    input_rows: int
    docs_without_text: int
    dictionary_version: str
    model_name: str | None
    model_hash: str | None
    code_version: str
    outputs: dict[str, OutputFile] = field(default_factory=dict)
    format: int = RESULT_FORMAT
    # "numpy", or "torch:cuda" etc.: equal vectors to float32 round-off, recorded so an index can tell them apart.
    embedding_runtime: str | None = None
    # sha256:<hex> of the container image the payload ran in ($CORPUSBRIDGE_IMAGE_DIGEST, set by the job script);
    # None on the workstation. A result written before this field existed reads as None.
    image_digest: str | None = None
    # The EXTRACTION_RULES the payload applied; None in a result written before the field.
    extraction_rules: int | None = None

    def write(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> ResultEntry:
        payload = json.loads(path.read_text(encoding="utf-8"))
        payload["outputs"] = {k: OutputFile(**v) for k, v in payload["outputs"].items()}
        return cls(**payload)
