"""A shard's vectors, computed on a thread of their own while the main thread matches concepts.

Vectors do not depend on concepts. Computed after each row group's concepts, as before, the encoder (a GPU on GPU
nodes) waited for the matcher and the matcher for the encoder; the model's work releases the GIL (torch kernels,
BLAS, the Rust tokenizer), so the two overlap. The thread writes the row groups in order, so the vectors file's bytes
do not depend on timing.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.extract.workers import READ_BATCH_ROWS

if TYPE_CHECKING:
    from corpusbridge.extract.embeddings.embedder import Embedder


def embedding_input(title: str | None, text: str | None) -> str:
    """What a document's vector is computed from: the title, a blank line, then the exported text, which starts with
    the title too. The title counts twice on purpose, as it weighs most in full-text search (export/statements.py);
    changing this changes every vector, so it would need a new model hash to be reprocessed."""
    return "\n\n".join(part for part in (title, text) if part)


class VectorsThread:
    """`start()` embeds every row group of the shard on a thread; `finish()` waits and returns the rows written.

    Leaving the `with` block stops the thread between two batches, so after an error the writer can be closed.
    """

    def __init__(self, shard: Path, has_title: bool, embedder: Embedder, writer: pq.ParquetWriter) -> None:
        self._shard = shard
        self._columns = ["doc_id", "text", "title"] if has_title else ["doc_id", "text"]
        self._embedder = embedder
        self._writer = writer
        self._stop = threading.Event()
        self._thread: ThreadPoolExecutor | None = None
        self._done: Future[int] | None = None

    def start(self) -> None:
        """Call once the matching workers are forked: a fork must not copy a running thread."""
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="corpusbridge-embed")
            self._done = self._thread.submit(self._embed_shard)

    def finish(self) -> int:
        self.start()
        assert self._done is not None
        return self._done.result()

    def __enter__(self) -> VectorsThread:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    def _embed_shard(self) -> int:
        source = pq.ParquetFile(self._shard)  # its own reader: the main thread's is not shared across threads
        rows = 0
        for batch in source.iter_batches(READ_BATCH_ROWS, columns=self._columns, use_threads=False):
            if self._stop.is_set():
                break
            data = batch.to_pydict()
            titles = data.get("title") or [None] * batch.num_rows
            vectors = self._embedder.embed([embedding_input(t, x) for t, x in zip(titles, data["text"], strict=True)])
            flat = pa.array(vectors.astype("float32", copy=False).reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, self._embedder.dimension)
            self._writer.write_table(pa.table({"doc_id": data["doc_id"], "vector": column}, schema=self._writer.schema))
            rows += batch.num_rows
        return rows
