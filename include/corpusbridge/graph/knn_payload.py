"""The kNN job's payload, one array index: `python -m corpusbridge.graph.knn_payload --vectors F --sha256 S --out D
--k 10 --parts P --index I [--device auto|cpu|cuda] [--json]`.

Index I takes its slice of the rows as queries against every vector (graph/neighbors.py, exact, in blocks; torch on
a GPU when `--device auto` finds one) and writes `neighbors-I.parquet`, then `neighbors-I.json` (its sha256, rows,
the input's sha256) as the completion marker. A part whose verified output is already there is not computed again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from corpusbridge.graph.knn_files import (
    NEIGHBORS_SCHEMA,
    KnnInputError,
    PartEntry,
    part_range,
    read_vectors,
    verified_part,
    write_part,
)
from corpusbridge.graph.neighbors import DEFAULT_K, best_device, knn_blocks


def compute_part(
    vectors: Path, sha256: str, out: Path, *, k: int, parts: int, index: int, device: str = "auto", block: int = 2048
) -> PartEntry:
    """Compute (or find done) one part; see the module docstring."""
    done = verified_part(out, index, sha256, k, parts)
    if done is not None:
        return done
    started = time.monotonic()
    doc_ids, matrix = read_vectors(vectors, sha256)
    if not 0 <= index < parts:
        raise KnnInputError(f"--index {index} is outside 0..{parts - 1} (--parts {parts})")
    start, stop = part_range(len(doc_ids), parts, index)
    chosen = best_device(device)
    blocks = list(knn_blocks(matrix, k=k, block=block, device=chosen, start=start, stop=stop))
    table = _table(doc_ids, blocks)
    out.mkdir(parents=True, exist_ok=True)
    name, sha = write_part(out, index, table)
    from corpusbridge.version import code_version

    entry = PartEntry(index, parts, k, start, stop, sha256, name, sha, table.num_rows, chosen,
                      round(time.monotonic() - started, 3), code_version())  # fmt: skip
    entry.write(out)
    return entry


def _table(doc_ids: list[str], blocks: list) -> pa.Table:
    ids = np.asarray(doc_ids, dtype=object)
    if not blocks:
        return NEIGHBORS_SCHEMA.empty_table()
    queries = np.concatenate([np.arange(b.first, b.first + len(b.indices)) for b in blocks])
    indices = np.concatenate([b.indices for b in blocks])
    scores = np.concatenate([b.scores for b in blocks])
    k = indices.shape[1]
    return pa.table(
        {
            "doc_id": pa.array(ids[np.repeat(queries, k)], pa.string()),
            "neighbor_id": pa.array(ids[indices.ravel()], pa.string()),
            "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int16), len(queries))),
            "cosine": pa.array(scores.ravel().astype(np.float32)),
        },
        schema=NEIGHBORS_SCHEMA,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corpusbridge.graph.knn_payload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--sha256", required=True, help="the input's sha256 (a damaged stage is refused)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--k", type=int, default=DEFAULT_K)
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--block", type=int, default=2048)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        entry = compute_part(args.vectors, args.sha256, args.out, k=args.k, parts=args.parts, index=args.index,
                             device=args.device, block=args.block)  # fmt: skip
    except (KnnInputError, OSError, ValueError) as exc:
        print(json.dumps({"error": str(exc)}) if args.json else f"knn payload: {exc}", file=sys.stdout)
        return 2
    print(json.dumps({"index": entry.index, "rows": entry.rows, "device": entry.device, "seconds": entry.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
