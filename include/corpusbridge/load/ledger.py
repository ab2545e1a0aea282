"""The load ledger: (batch, shard, result sha256) rows that make every shard load exactly once.

A shard's ledger row is inserted in the same transaction as its rows, so the row exists exactly when the shard's
concepts, vectors and document results are committed: a retry, a crash mid-load or a rerun of the whole DAG finds
it and loads nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from corpusbridge.extract.results import job_name
from corpusbridge.load import statements
from corpusbridge.load.verify import VerifiedShard


class ResultChanged(RuntimeError):
    """A shard is in the ledger with another result sha256: its result changed after it was loaded."""

    def __init__(self, batch_id: str, index: int, loaded: str, now: str) -> None:
        super().__init__(
            f"batch {batch_id} shard {index}: result-{index}.json has sha256 {now[:12]}…, but the shard was loaded "
            f"from a result with sha256 {loaded[:12]}…; the result changed after it was loaded (another runtime, "
            "or code that finds other concepts). A batch is loaded once: to replace the rows with this result, "
            "export them as a new batch, whose id comes from the documents, dictionary, model, shard size and "
            "extraction rules, e.g. `corpusbridge run --reprocess --shard-rows N` with another N"
        )
        self.batch_id, self.index = batch_id, index


class ImageDigestConflict(ValueError):
    """The image digest given to the load differs from the one the payload recorded in a shard's result."""

    def __init__(self, batch_id: str, conflicts: dict[int, str], given: str) -> None:
        shards = "; ".join(f"shard {i}: result-{i}.json says {digest}" for i, digest in sorted(conflicts.items()))
        super().__init__(
            f"batch {batch_id}: the image digest given to the load ({given}) is not the one the payload ran in "
            f"({shards}); those shards were not loaded. Leave --image-digest out (the results carry their own) or "
            "pass the digest of the image that computed them"
        )
        self.batch_id, self.indices = batch_id, sorted(conflicts)


@dataclass(frozen=True)
class Provenance:
    """Who loads: the Airflow run id or the CLI's run id, and the container image digest when the caller knows it.

    A result records the digest of the image its payload ran in; that one is what the ledger keeps. `image_digest`
    here is for results that carry none (a payload older than the field, or run outside the job script), and must
    agree with a result that does carry one.
    """

    run_label: str
    image_digest: str | None = None

    def digest_for(self, shard: VerifiedShard) -> str | None:
        """The shard's one image digest: the result's own, else the caller's; a disagreement is the caller's
        error (see check_image_digests)."""
        return shard.entry.image_digest or self.image_digest


def check_image_digests(batch_id: str, shards: list[VerifiedShard], provenance: Provenance) -> None:
    """Raise ImageDigestConflict naming every shard whose recorded image digest differs from the caller's."""
    given = provenance.image_digest
    if not given:
        return
    conflicts = {s.index: str(s.entry.image_digest) for s in shards if s.entry.image_digest not in (None, given)}
    if conflicts:
        raise ImageDigestConflict(batch_id, conflicts, given)


@dataclass(frozen=True)
class ShardCounts:
    docs: int
    concepts: int
    vectors: int


def loaded_sha(conn: psycopg.Connection, batch_id: str, index: int) -> str | None:
    """The result sha256 a shard was loaded from, or None when it is not in the ledger."""
    row = conn.execute(statements.LEDGER_ROW, (batch_id, index)).fetchone()
    return str(row[0]) if row else None


def record(
    conn: psycopg.Connection,
    batch_id: str,
    shard: VerifiedShard,
    counts: ShardCounts,
    *,
    run_id: int,
    provenance: Provenance,
) -> None:
    """Insert the shard's ledger row (in the caller's transaction), with the payload's provenance."""
    check_image_digests(batch_id, [shard], provenance)
    entry = shard.entry
    conn.execute(
        statements.INSERT_LEDGER,
        {
            "batch": batch_id,
            "shard": entry.index,
            "result_sha256": shard.result_sha256,
            "run_id": run_id,
            "run_label": provenance.run_label,
            "code_version": entry.code_version,
            "dictionary_version": entry.dictionary_version,
            "model_hash": entry.model_hash,
            "embedding_runtime": entry.embedding_runtime,
            "image_digest": provenance.digest_for(shard),
            "docs": counts.docs,
            "concepts": counts.concepts,
            "vectors": counts.vectors,
        }
        | _where_computed(shard),
    )


def _where_computed(shard: VerifiedShard) -> dict[str, str | None]:
    """The shard's `job-I.json` (backend, SLURM job, host), when the payload wrote one and it came back; it is no
    part of the verified result, so a missing or unreadable one leaves the columns empty."""
    import json

    try:
        found = json.loads((shard.folder / job_name(shard.index)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = {}
    found = found if isinstance(found, dict) else {}
    return {key: str(found[key]) if found.get(key) is not None else None for key in ("backend", "slurm_job", "host")}


def mark_batch_loaded(conn: psycopg.Connection, batch_id: str) -> bool:
    """Set the batch's status to 'loaded' once every shard is in the ledger; True when it changed now."""
    return conn.execute(statements.MARK_LOADED, (batch_id,)).rowcount > 0
