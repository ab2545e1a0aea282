"""Verify fetched results against their `result-I.json` and the export manifest before a byte is loaded.

A result is trusted only when every output file hashes to what the payload recorded, the payload read the very
shard the manifest names (input sha256), and the rows reconcile (input rows = manifest rows = vector rows). Every
bad shard is collected, so one error tells the caller which indices to re-fetch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpusbridge.export.manifest import ExportManifest, ShardEntry
from corpusbridge.extract.results import RESULT_FORMAT, ResultEntry, result_name
from corpusbridge.hashing import file_sha256


@dataclass(frozen=True)
class VerifiedShard:
    """A shard whose result may be loaded: the entry, its folder, and the sha256 of its result-I.json."""

    entry: ResultEntry
    folder: Path
    result_sha256: str

    @property
    def index(self) -> int:
        return self.entry.index

    def output(self, name: str) -> Path | None:
        found = self.entry.outputs.get(name)
        return self.folder / found.path if found else None


@dataclass(frozen=True)
class BadShard:
    index: int
    file: str
    reason: str

    def __str__(self) -> str:
        return f"shard {self.index}: {self.file}: {self.reason}"


class ResultVerificationError(ValueError):
    """Some fetched results cannot be trusted; `bad` names each shard, file and reason (re-fetch those indices)."""

    def __init__(self, batch_id: str, bad: list[BadShard], compute_failed: bool = False) -> None:
        self.batch_id = batch_id
        self.bad = bad
        lines = "; ".join(str(b) for b in bad[:20]) + (f"; and {len(bad) - 20} more" if len(bad) > 20 else "")
        if compute_failed:  # no result to verify: what the load run records is why the compute failed
            message = f"batch {batch_id}: the compute failed for shard(s) {self.indices}, none of them loaded ({lines})"
        else:
            message = (f"batch {batch_id}: {len(bad)} shard result(s) failed verification ({lines}); re-fetch "
                       f"shards {self.indices} from the cluster (or recompute them) and load again")  # fmt: skip
        super().__init__(message)

    @property
    def indices(self) -> list[int]:
        return sorted({b.index for b in self.bad})


def check_results(
    manifest: ExportManifest, results_dir: Path, *, embeddings: bool | None = None
) -> tuple[list[VerifiedShard], list[BadShard]]:
    """Verify every shard of the manifest: (shards that may be loaded, problems found), in index order.

    `embeddings`: True requires vectors, False forbids them, None accepts what the payload wrote.
    """
    good: list[VerifiedShard] = []
    bad: list[BadShard] = []
    for shard in manifest.shards:
        verified, problems = verify_shard(manifest, shard, results_dir, embeddings=embeddings)
        bad.extend(problems)
        if verified is not None and not problems:
            good.append(verified)
    return good, bad


def verify_results(
    manifest: ExportManifest, results_dir: Path, *, embeddings: bool | None = None
) -> list[VerifiedShard]:
    """Every shard verified, or ResultVerificationError naming all the bad ones."""
    good, bad = check_results(manifest, results_dir, embeddings=embeddings)
    if bad:
        raise ResultVerificationError(manifest.batch_id, bad)
    return good


def verify_shard(
    manifest: ExportManifest, shard: ShardEntry, results_dir: Path, *, embeddings: bool | None = None
) -> tuple[VerifiedShard | None, list[BadShard]]:
    """One shard's result entry checked against the manifest and its output files hashed."""
    path = results_dir / result_name(shard.index)
    entry, problem = _read_entry(path, shard.index)
    if entry is None:
        return None, [problem] if problem else []
    problems = [BadShard(shard.index, path.name, reason) for reason in _entry_problems(manifest, shard, entry)]
    problems += _output_problems(entry, results_dir, embeddings)
    return VerifiedShard(entry, results_dir, file_sha256(path)), problems


def _read_entry(path: Path, index: int) -> tuple[ResultEntry | None, BadShard | None]:
    try:
        return ResultEntry.read(path), None
    except FileNotFoundError:
        return None, BadShard(index, path.name, "missing (the payload has not completed or the fetch lost it)")
    except (ValueError, KeyError, TypeError) as exc:
        return None, BadShard(index, path.name, f"not a result entry ({exc})")


def _entry_problems(manifest: ExportManifest, shard: ShardEntry, entry: ResultEntry) -> list[str]:
    problems = []
    if entry.format != RESULT_FORMAT:
        problems.append(f"result format {entry.format}, expected {RESULT_FORMAT}")
    if entry.index != shard.index:
        problems.append(f"entry is for index {entry.index}")
    if entry.batch_id not in (None, manifest.batch_id):
        problems.append(f"entry is for batch {entry.batch_id}, not {manifest.batch_id}")
    if entry.input_sha256 != shard.sha256:
        problems.append(
            f"input sha256 {entry.input_sha256[:12]}… differs from the manifest's {shard.sha256[:12]}… "
            "(the payload read another shard)"
        )
    if entry.input_rows != shard.rows:
        problems.append(f"input rows {entry.input_rows} != manifest rows {shard.rows}")
    return problems


def _output_problems(entry: ResultEntry, folder: Path, embeddings: bool | None) -> list[BadShard]:
    problems = []
    if "concepts" not in entry.outputs:
        problems.append(BadShard(entry.index, result_name(entry.index), "lists no concepts output"))
    vectors = entry.outputs.get("vectors")
    if embeddings and vectors is None:
        problems.append(BadShard(entry.index, result_name(entry.index), "has no vectors but embeddings are on"))
    if embeddings is False and vectors is not None:
        problems.append(BadShard(entry.index, result_name(entry.index), "has vectors but embeddings are off"))
    if vectors is not None and vectors.rows != entry.input_rows:
        problems.append(
            BadShard(entry.index, vectors.path, f"{vectors.rows} vector rows != {entry.input_rows} input rows")
        )
    for output in entry.outputs.values():
        if Path(output.path).name != output.path:  # a result names files beside it, never elsewhere on this machine
            problems.append(BadShard(entry.index, output.path, "output path leaves the result folder"))
            continue
        reason = _file_problem(folder / output.path, output.sha256)
        if reason:
            problems.append(BadShard(entry.index, output.path, reason))
    return problems


def _file_problem(path: Path, expected: str) -> str | None:
    try:
        actual = file_sha256(path)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if actual != expected:
        return f"sha256 mismatch (expected {expected[:12]}…, got {actual[:12]}…): corrupted or partly fetched"
    return None
