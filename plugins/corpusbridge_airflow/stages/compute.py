"""corpus_compute's middle: the cached dictionary artifact, then the payload per shard (locally or as a SLURM array).

Both backends run the same payload (`python -m corpusbridge.extract`) on the same staged files and leave the same
`concepts-I.parquet`, `vectors-I.parquet` and `result-I.json` in `results_dir(batch_id)`, where the load reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corpusbridge_airflow import settings
from corpusbridge_airflow.stages import operator_request

log = logging.getLogger(__name__)

# Every file the payload writes per shard (compute/outputs.py: result_files), the graph's partial counts included.
RESULT_PATTERNS = (
    "concepts-*.parquet",
    "vectors-*.parquet",
    "cooccurrence-*.parquet",
    "concept-docs-*.parquet",
    # result-I.json and job-I.json (where the index ran; a payload older than that file writes none, and a pattern
    # matching nothing would fail the fetch).
    "*-*.json",
)
REMOTE_RESULTS = "results"


def results_dir(batch_id: str) -> Path:
    """Where a batch's results land on the workstation, whichever backend computed them."""
    return settings.work_dir() / "results" / batch_id


def dictionary_stage(terms: str) -> dict[str, Any]:
    """Build the dictionary artifact once per version (cached on the workstation; nodes never rebuild it)."""
    from corpusbridge.compute.dictionary import cached_dictionary

    cache = settings.work_dir() / "dictionaries"
    built = cached_dictionary(Path(terms), cache)
    log.info("dictionary %s: version %s, artifact %s", terms, built.version, built.path)
    return {"terms": terms, "path": str(built.path), "version": built.version}


def local_stage(export: Mapping[str, Any], dictionary: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Run the payload for every shard as subprocesses here; a failed shard fails the task, naming it."""
    from corpusbridge.compute.local import run_local

    out = results_dir(str(export["batch_id"]))
    embeddings = bool(params.get("embeddings", True))
    log.info(
        "local payload: %d shard(s) of batch %s, embeddings %s, into %s",
        export["shards"],
        export["batch_id"],
        "on" if embeddings else "off",
        out,
    )
    summary = run_local(Path(export["manifest"]), Path(dictionary["path"]), out, embeddings=embeddings)
    if summary.failed:
        failed = "; ".join(f"shard {i}: {reason}" for i, reason in sorted(summary.failed.items()))
        raise RuntimeError(f"batch {export['batch_id']}: {len(summary.failed)} shard(s) failed: {failed}")
    return {
        "backend": "local",
        "shards": summary.shards,
        "docs_processed": summary.docs_processed,
        "seconds": summary.seconds,
        "results_dir": str(out),
    }


def slurm_request(
    export: Mapping[str, Any], dictionary: Mapping[str, Any], params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The SlurmOperator's run-time arguments: one array index per shard; a one-element list (one job) to expand."""
    from corpusbridge.compute.slurm import payload_argv

    embeddings = bool(params.get("embeddings", True))
    batch_dir = Path(str(export["manifest"])).parent
    artifact = Path(str(dictionary["path"]))
    # Paths relative to the scratch dir (the job's working dir), where stage_in puts both folders by name. The
    # container, if any, is the SlurmOperator's: it binds the scratch dir, which is not known before it runs.
    command = payload_argv(
        f"{batch_dir.name}/manifest.json",
        artifact.name,
        REMOTE_RESULTS,
        embeddings=embeddings,
        python=settings.cluster_python(params.get("cluster_python")),
    )
    request = operator_request(
        params,
        command=command,
        array_size=int(export["shards"]),
        stage_in=[str(batch_dir), str(artifact)],
        stage_out=[f"{REMOTE_RESULTS}/{pattern}" for pattern in _result_patterns(embeddings)],
        local_output_dir=str(results_dir(str(export["batch_id"]))),
    )
    log.info("SLURM request for batch %s: %s", export["batch_id"], request)
    return [request]


def _result_patterns(embeddings: bool) -> list[str]:
    """Without embeddings the payload writes no vectors file, and a glob that matches nothing fails the fetch."""
    return [p for p in RESULT_PATTERNS if embeddings or not p.startswith("vectors-")]
