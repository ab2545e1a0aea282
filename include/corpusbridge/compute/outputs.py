"""What a compute backend hands back: per-shard results checked against the manifest, and the run's summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from corpusbridge.export.manifest import ShardEntry
from corpusbridge.extract.cooccurrence import concept_docs_name, cooccurrence_name
from corpusbridge.extract.results import ResultEntry, concepts_name, result_name, vectors_name
from corpusbridge.hashing import file_sha256


@dataclass
class ComputeSummary:
    """One compute run over a batch. `failed` maps a shard index to why (exit status and the stderr tail)."""

    shards: int
    docs_processed: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    out_dir: str = ""
    skipped: int = 0  # shards whose verified result was already there (a rerun does nothing)
    backend: str = "local"
    job_ids: list[str] = field(default_factory=list)  # SLURM: the jobs waited on (submitted or re-attached)
    submitted: list[int] = field(default_factory=list)  # SLURM: the indices this call submitted

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def payload_error(stdout: str) -> str:
    """The payload's own reason for failing: with --json it prints one `{"error": ...}` line on stdout."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            return str(json.loads(line).get("error") or "")
        except (ValueError, AttributeError):
            continue
    return ""


def failure_message(head: str, stdout: str, stderr: str, tail_chars: int = 2000) -> str:
    """`head: the payload's error` plus the stderr tail: what a person needs to fix a failed shard."""
    tail = stderr.strip()[-tail_chars:]
    error = payload_error(stdout)
    return (f"{head}: {error}" if error else head) + (f"\nstderr tail:\n{tail}" if tail else "")


def failure_line(message: str) -> str:
    """A failure_message in one line: its head and the last line of its stderr tail (where a Python traceback
    names the exception, e.g. `ModuleNotFoundError: No module named 'corpusbridge'`)."""
    head, _, tail = message.partition("\nstderr tail:\n")
    last = next((line.strip() for line in reversed(tail.splitlines()) if line.strip()), "")
    return f"{head}; its stderr ends: {last}" if last else head


def result_files(index: int, embeddings: bool) -> list[str]:
    """The files the payload writes for one shard, the result entry (the completion marker) last."""
    names = [concepts_name(index)] + ([vectors_name(index)] if embeddings else [])
    return [*names, cooccurrence_name(index), concept_docs_name(index), result_name(index)]


def verified_result(out_dir: Path, shard: ShardEntry, dictionary_version: str, embeddings: bool) -> ResultEntry | None:
    """The shard's result entry when it completed for this very input, dictionary and embeddings setting and every
    output file it lists is intact; None otherwise (missing, foreign, stale or damaged: process it again)."""
    return checked_result(out_dir, shard, dictionary_version, embeddings)[0]


def checked_result(
    out_dir: Path, shard: ShardEntry, dictionary_version: str, embeddings: bool
) -> tuple[ResultEntry | None, str]:
    """verified_result with the reason when it is None, naming the file: what a failed fetch reports."""
    path = out_dir / result_name(shard.index)
    if not path.is_file():
        return None, f"{path.name} is missing"
    try:
        entry = ResultEntry.read(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path.name} is unreadable ({type(exc).__name__}: {exc})"
    if (entry.input_sha256, entry.input_rows, entry.dictionary_version) != (
        shard.sha256,
        shard.rows,
        dictionary_version,
    ):
        return None, f"{path.name} is for another input or dictionary"
    if ("vectors" in entry.outputs) != embeddings:
        return None, f"{path.name} was computed {'without' if embeddings else 'with'} embeddings"
    for output in entry.outputs.values():
        target = out_dir / output.path
        if not target.is_file():
            return None, f"{output.path} is missing"
        if file_sha256(target) != output.sha256:
            return None, f"{output.path} is damaged (its sha256 differs from {path.name})"
    return entry, ""
