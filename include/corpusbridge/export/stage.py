"""The export stage: a Selection of clean documents -> deterministic Parquet shards, a manifest, a batch row.

    with connect() as conn:
        summary = run_export(conn, Selection(), home_dir() / "exports")

Rows stream from a server-side cursor in doc_id order into ShardWriter (one row group in memory); which document went
into which shard is spooled to a file and COPYed into `export_batch_documents` at the end, so memory stays bounded
whatever the batch size. The batch id is derived from the content (the ordered (doc_id, clean_seq) list, dictionary,
model, schema and shard targets): the same selection of the same documents gives the same id and the same bytes.
Files are written in a hidden temp folder renamed to `<out_dir>/<batch_id>/`; the batch rows are committed in the
same transaction that marks the run succeeded, so a crash leaves no batch (and at most a temp folder the next run
removes).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import psycopg
from psycopg.types.json import Jsonb

from corpusbridge.export import statements
from corpusbridge.export.manifest import ExportManifest, ManifestError, read_manifest, shard_path, write_manifest
from corpusbridge.export.schema import SHARD_SCHEMA, schema_fingerprint
from corpusbridge.export.selection import Selection
from corpusbridge.export.shards import ShardRowLimits, ShardWriter
from corpusbridge.extract.results import EXTRACTION_RULES
from corpusbridge.hashing import file_sha256
from corpusbridge.runs import (
    ProgressCallback,
    ProgressMeter,
    RunSummary,
    Stage,
    recorded_run,
    save_run,
    stage_lock,
    start_run,
)

log = logging.getLogger(__name__)

BATCH_ID_CHARS = 16
MANIFEST_NAME = "manifest.json"
FETCH_ROWS = 2000  # rows per server-side FETCH: a few MB of text in flight
_TEMP_PREFIX = ".export-tmp-"
_BATCH_ID_VERSION = "corpusbridge-export-1"


@dataclass
class ExportSummary(RunSummary):
    """One export run. `reused`: the selection's batch was still in flight and is returned as it is."""

    columns: ClassVar[tuple[str, ...]] = ("batch_id", "shards", "docs_exported", "bytes")

    batch_id: str | None = None
    shards: int = 0
    docs_exported: int = 0
    bytes: int = 0
    manifest: str | None = None
    reused: bool = False


@dataclass
class _Written:
    """A batch written to its temp folder, not yet published."""

    folder: Path
    spool: Path
    manifest: ExportManifest
    rows: int
    bytes: int


def run_export(
    conn: psycopg.Connection,
    selection: Selection,
    out_dir: Path,
    *,
    shard_rows: int = 50_000,
    shard_bytes: int = 256 * 2**20,
    progress: ProgressCallback | None = None,
) -> ExportSummary:
    """Export `selection` under `out_dir/<batch_id>/`; nothing selected -> no batch (batch_id None, shards 0)."""
    limits = ShardRowLimits(shard_rows, shard_bytes)
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    with stage_lock(conn, Stage.EXPORT):
        summary = ExportSummary(run_id=start_run(conn, Stage.EXPORT, {"selection": selection.as_dict()}))
        with recorded_run(conn, Stage.EXPORT, summary):
            if _reuse_in_flight(conn, selection, limits, summary):
                return summary
            _remove_stale_temps(out_dir)  # under the stage lock: any temp folder left is a dead run's
            try:
                written = _write(conn, selection, out_dir, limits, ProgressMeter(Stage.EXPORT, progress))
                try:
                    if written.rows:
                        _publish(conn, selection, written, out_dir, limits, summary)
                    else:
                        log.info("export: nothing to export (%s): %s", selection.describe(), selection.why_empty())
                finally:
                    shutil.rmtree(written.folder, ignore_errors=True)
                    written.spool.unlink(missing_ok=True)
            except OSError as exc:
                if not _out_of_space(exc):
                    raise
                raise ExportDiskFull(
                    f"export: no space left on device under {out_dir} (the shards need more room than is free); "
                    "nothing was published and the partial files were removed: free space there or export to "
                    "another folder, then run again"
                ) from exc
    return summary


class ExportDiskFull(OSError):
    """The export folder's filesystem filled up mid-write; nothing was published."""


def _out_of_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc)


class BatchNotFound(LookupError):
    """No export batch with that id; the message says where to look."""


def abandon_batch(conn: psycopg.Connection, batch_id: str) -> str:
    """Mark an in-flight batch abandoned so its documents are pending again; returns the batch's status after.

    For a batch that will never come back (its run was given up): until then the pending selection keeps its
    documents out of other batches. A loaded batch stays loaded. Commits.
    """
    with conn.transaction():
        conn.execute(statements.ABANDON_BATCH, (batch_id,))
        row = conn.execute(statements.BATCH_STATUS, (batch_id,)).fetchone()
    if row is None:
        raise BatchNotFound(f"no export batch {batch_id!r}; `corpusbridge status` lists the unfinished ones")
    return str(row[0])


def batch_digest(selection: Selection, limits: ShardRowLimits) -> hashlib._Hash:
    """The start of a batch id: what the same documents must also share to be the same batch."""
    header = {
        "version": _BATCH_ID_VERSION,
        "extraction_rules": EXTRACTION_RULES,
        "schema": schema_fingerprint(SHARD_SCHEMA),
        "dictionary_version": selection.dictionary_version,
        "model_hash": selection.model_hash,
        "shard_rows": limits.rows,
        "shard_bytes": limits.bytes,
    }
    return hashlib.sha256(json.dumps(header, sort_keys=True).encode() + b"\n")


def _write(
    conn: psycopg.Connection, selection: Selection, out_dir: Path, limits: ShardRowLimits, meter: ProgressMeter
) -> _Written:
    """Stream the selection into shards in a temp folder; the batch id is known once the last row is read."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    folder, spool = out_dir / f"{_TEMP_PREFIX}{token}", out_dir / f"{_TEMP_PREFIX}{token}.documents"
    folder.mkdir()
    writer, digest, rows = ShardWriter(folder, limits), batch_digest(selection, limits), 0
    try:
        with open(spool, "w", encoding="utf-8") as documents:
            for doc_id, clean_seq, text, title, year in _stream(conn, selection):
                shard = writer.add(doc_id, text, title, year)
                digest.update(f"{doc_id}\t{clean_seq}\n".encode())
                documents.write(f"{copy_text(doc_id)}\t{shard}\t{clean_seq}\n")
                rows += 1
                if rows % FETCH_ROWS == 0:
                    meter.advance(FETCH_ROWS)
        shards = writer.close()
    except BaseException:
        try:
            writer.abort()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            spool.unlink(missing_ok=True)
        raise
    meter.advance(rows % FETCH_ROWS)
    meter.report()
    if sum(entry.rows for entry in shards) != rows:  # nothing lost between the cursor and the shards
        shutil.rmtree(folder, ignore_errors=True)
        spool.unlink(missing_ok=True)
        raise RuntimeError(f"export: {rows} documents read but {sum(e.rows for e in shards)} written to shards")
    manifest = ExportManifest(
        digest.hexdigest()[:BATCH_ID_CHARS], schema_fingerprint(SHARD_SCHEMA), shards, EXTRACTION_RULES
    )
    size = sum((folder / entry.path).stat().st_size for entry in shards)
    return _Written(folder, spool, manifest, rows, size)


_Row = tuple[str, int, str | None, str | None, int | None]  # doc_id, clean_seq, text, title, year


def _stream(conn: psycopg.Connection, selection: Selection) -> Iterator[_Row]:
    """The selection's rows in export order: the ordered (doc_id, clean_seq) pairs through a server-side cursor,
    their texts fetched by primary key FETCH_ROWS at a time, all in one repeatable-read snapshot (a text that
    changes meanwhile cannot slip in under the clean_seq that was selected)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with conn.cursor(name="corpusbridge_export") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(statements.selection_query(selection), statements.selection_params(selection))
            while chunk := cursor.fetchmany(FETCH_ROWS):
                rows = conn.execute(statements.TEXTS, ([doc_id for doc_id, _ in chunk],)).fetchall()
                texts = {doc_id: (text, title, year) for doc_id, text, title, year in rows}
                for doc_id, clean_seq in chunk:
                    yield (doc_id, clean_seq, *texts[doc_id])


def _publish(
    conn: psycopg.Connection,
    selection: Selection,
    written: _Written,
    out_dir: Path,
    limits: ShardRowLimits,
    summary: ExportSummary,
) -> None:
    """Rename the folder into place, then commit the batch rows together with the succeeded run."""
    batch_id = written.manifest.batch_id
    write_manifest(written.folder / MANIFEST_NAME, written.manifest)
    final = out_dir / batch_id
    if final.exists():  # the same batch written before (same id = same bytes); the new copy replaces it whole
        shutil.rmtree(final)
    os.replace(written.folder, final)
    manifest_path = final / MANIFEST_NAME
    summary.batch_id, summary.shards = batch_id, len(written.manifest.shards)
    summary.docs_exported, summary.bytes, summary.manifest = written.rows, written.bytes, str(manifest_path)
    with conn.transaction():
        _insert_batch(conn, selection, written, manifest_path, limits, summary.run_id)
        summary.status = "succeeded"
        save_run(conn, Stage.EXPORT, summary)
    log.info(
        "export: batch %s, %d docs in %d shard(s), %d bytes", batch_id, written.rows, summary.shards, written.bytes
    )


def _insert_batch(
    conn: psycopg.Connection,
    selection: Selection,
    written: _Written,
    manifest_path: Path,
    limits: ShardRowLimits,
    run_id: int,
) -> None:
    batch_id = written.manifest.batch_id
    row = conn.execute(
        statements.UPSERT_BATCH,
        {
            "batch_id": batch_id,
            "run_id": run_id,
            "selection": Jsonb(selection.as_dict()),
            "dictionary_version": selection.dictionary_version,
            "model_hash": selection.model_hash,
            "shard_count": len(written.manifest.shards),
            "rows": written.rows,
            "bytes": written.bytes,
            "manifest_sha256": file_sha256(manifest_path),
            "manifest_path": str(manifest_path),
            "shard_rows": limits.rows,
            "shard_bytes": limits.bytes,
        },
    ).fetchone()
    if row is None or not row[0]:
        return  # the batch existed: same id = same documents in the same shards, already listed
    prefix = copy_text(batch_id) + "\t"
    with (
        open(written.spool, encoding="utf-8") as documents,
        conn.cursor() as cursor,
        cursor.copy(statements.COPY_BATCH_DOCUMENTS) as copy,
    ):
        while lines := documents.readlines(2**20):  # the spool is already COPY text; only the batch id is added
            copy.write("".join(prefix + line for line in lines))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """A value as one field of COPY's text format (backslash, tab, newline and CR escaped)."""
    return value.translate(_COPY_ESCAPES)


def _reuse_in_flight(
    conn: psycopg.Connection, selection: Selection, limits: ShardRowLimits, summary: ExportSummary
) -> bool:
    """A batch of this very selection still in flight, with its files intact (wherever they are), is returned
    instead of a new one: the DAG's retry of a failed load finds its batch, and no second copy goes to the cluster.
    One whose files were lost is exported again (the same documents give the same batch id and bytes)."""
    params = {"selection": Jsonb(selection.as_dict()), "shard_rows": limits.rows, "shard_bytes": limits.bytes}
    rows = conn.execute(statements.FIND_IN_FLIGHT, params).fetchall()
    conn.commit()
    for batch_id, shard_count, batch_rows, size, manifest_path, manifest_sha256 in rows:
        if _intact(Path(manifest_path), manifest_sha256):
            summary.batch_id, summary.shards, summary.docs_exported = batch_id, shard_count, batch_rows
            summary.bytes, summary.manifest, summary.reused = size, manifest_path, True
            log.info("export: batch %s of this selection is still in flight; returning it", batch_id)
            return True
        log.warning("export: batch %s of this selection lost its files (%s); exporting again", batch_id, manifest_path)
    return False


def _intact(manifest_path: Path, manifest_sha256: str) -> bool:
    """The manifest has its recorded sha256 and every shard it lists exists with a plausible size."""
    if not manifest_path.is_file() or file_sha256(manifest_path) != manifest_sha256:
        return False
    try:
        manifest = read_manifest(manifest_path)
    except ManifestError:
        return False
    return all(shard_path(manifest_path, entry).is_file() for entry in manifest.shards)


def _remove_stale_temps(out_dir: Path) -> None:
    for stale in out_dir.glob(f"{_TEMP_PREFIX}*"):
        log.info("export: removing %s, left by an interrupted run", stale)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
