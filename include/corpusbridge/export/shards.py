"""Deterministic Parquet shards: the same rows in the same order give the same bytes, every time.

Fixed writer settings (zstd level 3, statistics on, no dictionary-page surprises from options left to defaults that
may change), row groups of exactly ROW_GROUP_ROWS rows (the last one of a shard shorter), a new shard when a shard
reaches its row or byte target. Each shard is written under a hidden temp name and renamed when closed: a crash
never leaves a half shard under a real name. Memory is one row group of rows, whatever the batch size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from corpusbridge.export.manifest import ShardEntry
from corpusbridge.export.schema import ROW_GROUP_ROWS, SHARD_SCHEMA
from corpusbridge.hashing import file_sha256

# Every writer option spelled out: a default that changes between pyarrow releases would change the bytes.
WRITER_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "write_statistics": True,
    "use_dictionary": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "write_page_index": False,
    "store_schema": True,
}


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"


@dataclass
class ShardRowLimits:
    rows: int
    bytes: int

    def __post_init__(self) -> None:
        if self.rows < 1 or self.bytes < 1:
            raise ValueError(f"shard_rows and shard_bytes must be >= 1 (got {self.rows}, {self.bytes})")


@dataclass
class _Open:
    index: int
    tmp: Path
    handle: BinaryIO
    writer: pq.ParquetWriter
    rows: int = 0
    full: bool = False  # decided after each row group: a shard only grows a row group at a time


@dataclass
class ShardWriter:
    """Rows in, shards out: call add() per row in export order, then close(); `shards` lists what was written."""

    folder: Path
    limits: ShardRowLimits
    shards: list[ShardEntry] = field(default_factory=list)
    _buffer: list[tuple[str, str | None, str | None, int | None]] = field(default_factory=list)
    _open: _Open | None = None

    @property
    def current_index(self) -> int:
        """The shard the next added row goes to."""
        if self._open is not None and not self._open.full:
            return self._open.index
        return len(self.shards) + (1 if self._open is not None else 0)

    def add(self, doc_id: str, text: str | None, title: str | None, year: int | None) -> int:
        """Buffer one row; returns the index of the shard it lands in."""
        index = self.current_index
        if self._open is not None and index != self._open.index:
            self._close_shard()
        self._buffer.append((doc_id, text, title, year))
        if len(self._buffer) >= self._group_rows():
            self._flush()
        return index

    def close(self) -> list[ShardEntry]:
        """Write what is buffered and close the last shard."""
        if self._buffer:
            self._flush()
        if self._open is not None:
            self._close_shard()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (its temp file) after a failure."""
        if self._open is not None:
            self._open.writer.close()
            self._open.handle.close()
            self._open.tmp.unlink(missing_ok=True)
            self._open = None
        self._buffer.clear()

    def _group_rows(self) -> int:
        """A row group ends at ROW_GROUP_ROWS rows or where the shard's row target cuts it."""
        done = self._open.rows if self._open is not None else 0
        return min(ROW_GROUP_ROWS, self.limits.rows - done)

    def _full(self, shard: _Open) -> bool:
        return shard.rows >= self.limits.rows or shard.handle.tell() >= self.limits.bytes

    def _flush(self) -> None:
        shard = self._open or self._start()
        doc_ids, texts, titles, years = zip(*self._buffer, strict=True)
        table = pa.table(
            [pa.array(doc_ids, pa.string()), pa.array(texts, pa.string()), pa.array(titles, pa.string()),
             pa.array(years, pa.int32())],
            schema=SHARD_SCHEMA,
        )  # fmt: skip
        shard.writer.write_table(table, row_group_size=len(self._buffer))
        shard.rows += len(self._buffer)
        shard.full = self._full(shard)
        self._buffer.clear()

    def _start(self) -> _Open:
        index = len(self.shards)
        tmp = self.folder / f".{shard_name(index)}.tmp-{os.getpid()}"
        handle = open(tmp, "wb")  # noqa: SIM115 - closed in _close_shard / abort
        writer = pq.ParquetWriter(handle, SHARD_SCHEMA, **WRITER_OPTIONS)  # type: ignore[arg-type]
        self._open = _Open(index, tmp, handle, writer)
        return self._open

    def _close_shard(self) -> None:
        shard = self._open
        assert shard is not None
        shard.writer.close()
        shard.handle.flush()
        os.fsync(shard.handle.fileno())
        shard.handle.close()
        final = self.folder / shard_name(shard.index)
        os.replace(shard.tmp, final)
        self.shards.append(ShardEntry(shard.index, final.name, shard.rows, file_sha256(final)))
        self._open = None
