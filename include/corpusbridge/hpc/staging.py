"""Verified, resumable file staging between this machine and a cluster scratch dir, over any `Transport`.

Stage in: every file lands in the scratch dir under its base name (a folder keeps its own name and layout), is
hashed on the cluster after upload and compared with the local sha256; a file already there with the right hash
is skipped, so a rerun after an interrupt only moves what is missing or damaged. Fetch is the mirror image:
remote globs into a local folder, hashed on both sides. Remote hashes are computed for many files in ONE
command (one round trip per batch, not per file) with `openssl` (SHA-NI accelerated) when the cluster has it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from corpusbridge.hashing import file_sha256
from corpusbridge.hpc.transport import POSIX_SHA256_FUNCTION, BulkDownload, BulkUpload, Transport

log = logging.getLogger(__name__)

Action = Literal["copied", "skipped", "repaired"]
_BATCH = 200  # paths per remote command (hashing, bulk transfer): far below ARG_MAX on any login node
# Prints, per (path, expected size) pair, "<sha256> <size>", or "~ <size>" when an expected size is given and
# differs (known stale without hashing), or "-" when the path is not a regular file.
_REMOTE_HASHES = (
    POSIX_SHA256_FUNCTION
    + r"""
while [ $# -gt 1 ]; do
  if [ ! -f "$1" ]; then echo -
  else
    n=$(wc -c < "$1" | tr -d ' ')
    if [ "$2" = any ] || [ "$2" = "$n" ]; then x=$(h "$1"); echo "${x:-!} $n"; else echo "~ $n"; fi
  fi
  shift 2
done
"""
)


class StagingError(RuntimeError):
    """A file could not be moved intact; the message names it and says how to resume."""


@dataclass(frozen=True)
class TransferredFile:
    source: str
    target: str
    size: int
    sha256: str
    action: Action


@dataclass(frozen=True)
class TransferResult:
    """What one staging call did: every file it was given appears in `files`, skipped or not."""

    files: tuple[TransferredFile, ...]
    bytes: int  # bytes actually moved (skipped files excluded)
    skipped: int
    repaired: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Planned:
    local: Path
    remote: str
    size: int


# -- stage in --------------------------------------------------------------------------------------------------
def stage_in(transport: Transport, sources: Iterable[Path], remote_dir: str) -> TransferResult:
    """Copy local files/folders into `remote_dir` (created), verified by sha256 on the remote side, resumable."""
    started = time.monotonic()
    plan = plan_stage_in(sources, remote_dir)
    if not plan:
        transport.makedirs(remote_dir)  # still the job's working directory
    # One hashing thread keeps pace with the link (SHA-NI: ~1.8 GB/s) and leaves the other core to ssh.
    with ThreadPoolExecutor(max_workers=1) as pool:
        local = {p.remote: pool.submit(file_sha256, p.local) for p in plan}
        present = remote_hashes(transport, [(p.remote, p.size) for p in plan])
        todo = [p for p in plan if p.remote not in present or present[p.remote][0] != local[p.remote].result()]
        arrived = dict(zip([p.remote for p in todo], _upload(transport, todo), strict=True))
        files = [
            _outcome(transport, p, local[p.remote].result(), present.get(p.remote), arrived.get(p.remote)) for p in plan
        ]
    return _finish(files, started, f"staged into {transport.name}:{remote_dir}")


def _upload(transport: Transport, todo: list[_Planned]) -> list[str]:
    """Upload, then return each file's sha256 as read back on the remote side (one stream when possible)."""
    pairs = [(p.local, p.remote) for p in todo]
    if isinstance(transport, BulkUpload):
        batches = (pairs[start : start + _BATCH] for start in range(0, len(pairs), _BATCH))
        return [sha for batch in batches for sha in transport.put_many(batch)]
    for local, remote in pairs:
        transport.put(local, remote)
    got = remote_hashes(transport, [(remote, None) for _, remote in pairs])
    return [got.get(remote, ("missing", 0))[0] for _, remote in pairs]


def _outcome(
    transport: Transport, item: _Planned, sha: str, before: tuple[str, int] | None, arrived: str | None
) -> TransferredFile:
    """Classify one file; a copy that arrived damaged is uploaded once more, then the staging fails loudly."""
    if arrived is None:
        log.debug("skip %s: already at %s with the same sha256", item.local, item.remote)
        return TransferredFile(str(item.local), item.remote, item.size, sha, "skipped")
    action: Action = "copied" if before is None else "repaired"
    if before is not None:
        log.warning(
            "%s: the remote copy %s was damaged or stale (sha256 %s); uploaded again",
            item.local,
            item.remote,
            before[0],
        )
    if arrived != sha:
        log.warning(
            "%s: sha256 mismatch after upload (expected %s, got %s); uploading again", item.remote, sha, arrived
        )
        transport.put(item.local, item.remote)
        again = transport.sha256(item.remote)
        if again != sha:
            raise StagingError(
                f"{item.local.name}: sha256 mismatch after upload to {item.remote} (expected {sha}, "
                f"got {again}) twice; check the cluster filesystem, then re-run to resume the transfer"
            )
        action = "repaired"
    return TransferredFile(str(item.local), item.remote, item.size, sha, action)


def plan_stage_in(sources: Iterable[Path], remote_dir: str) -> list[_Planned]:
    """Where each local file goes; two sources that would land on the same remote name are an error."""
    plan: dict[str, _Planned] = {}
    for source in sources:
        source = Path(source)
        if not source.exists():
            raise FileNotFoundError(f"stage_in: {source} does not exist; fix the path in stage_in")
        for local, relative in _files_under(source):
            remote = str(PurePosixPath(remote_dir, relative))
            if remote in plan:
                raise StagingError(
                    f"stage_in: {plan[remote].local} and {local} would both land on {remote}; "
                    "rename one of them or stage them from separate folders"
                )
            plan[remote] = _Planned(local, remote, local.stat().st_size)
    return list(plan.values())


def _files_under(source: Path) -> list[tuple[Path, str]]:
    if source.is_file():
        return [(source, source.name)]
    return [
        (path, str(PurePosixPath(source.name, *path.relative_to(source).parts)))
        for path in sorted(source.rglob("*"))
        if path.is_file()
    ]


# -- fetch -----------------------------------------------------------------------------------------------------
def fetch(
    transport: Transport, patterns: Sequence[str], local_dir: Path, *, require_match: bool = True
) -> TransferResult:
    """Download the remote files matching `patterns` into `local_dir` under their base names, verified by sha256;
    files already there with the right hash are skipped. A pattern matching nothing is an error unless
    `require_match=False` (a missing output should not look like an empty one)."""
    started = time.monotonic()
    remote_files = _expand(transport, patterns, require_match)
    hashes = remote_hashes(transport, [(r, None) for r in remote_files])
    targets = _fetch_targets(remote_files, hashes, local_dir)
    todo = {target: target.exists() for remote, target in targets if not _intact(target, hashes[remote])}
    bulk = isinstance(transport, BulkDownload)
    if isinstance(transport, BulkDownload):
        wanted = [(remote, target) for remote, target in targets if target in todo]
        for start in range(0, len(wanted), _BATCH):
            transport.get_many(wanted[start : start + _BATCH])
    files = [
        _download_one(transport, remote, target, hashes[remote], todo.get(target), bulk) for remote, target in targets
    ]
    return _finish(files, started, f"fetched from {transport.name} into {local_dir}")


def _expand(transport: Transport, patterns: Sequence[str], require_match: bool) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        matches = transport.glob(pattern)
        if not matches and require_match:
            raise StagingError(f"fetch: nothing on the cluster matches {pattern!r}; check the job's output paths")
        found += [m for m in matches if m not in found]
    return found


def _fetch_targets(
    remote_files: list[str], hashes: dict[str, tuple[str, int]], local_dir: Path
) -> list[tuple[str, Path]]:
    targets: dict[Path, str] = {}
    for remote in remote_files:
        if remote not in hashes:
            raise StagingError(f"fetch: {remote} is not a regular file (a folder?); match its files, e.g. '{remote}/*'")
        target = local_dir / PurePosixPath(remote).name
        if target in targets:
            raise StagingError(
                f"fetch: {targets[target]} and {remote} would both land on {target}; narrow the patterns"
            )
        targets[target] = remote
    return [(remote, target) for target, remote in targets.items()]


def _intact(target: Path, expected: tuple[str, int]) -> bool:
    return target.is_file() and target.stat().st_size == expected[1] and file_sha256(target) == expected[0]


def _download_one(
    transport: Transport, remote: str, target: Path, expected: tuple[str, int], existed: bool | None, fetched: bool
) -> TransferredFile:
    """Classify one file after the (bulk) download; a damaged copy is downloaded once more, then it fails loudly.
    `existed` is None when the local copy was already intact, True when a damaged one was replaced."""
    sha, size = expected
    if existed is None:
        return TransferredFile(remote, str(target), size, sha, "skipped")
    action: Action = "repaired" if existed else "copied"
    for attempt in (1, 2):
        if not fetched or attempt == 2:
            transport.get(remote, target)
        got = file_sha256(target)
        if got == sha:
            return TransferredFile(remote, str(target), size, sha, action)
        log.warning("%s: sha256 mismatch after download (expected %s, got %s), attempt %d", target, sha, got, attempt)
        action = "repaired"
    target.unlink(missing_ok=True)
    raise StagingError(
        f"{remote}: sha256 mismatch after download to {target} (expected {sha}) twice; re-run to resume the transfer"
    )


# -- shared ----------------------------------------------------------------------------------------------------
def remote_hashes(transport: Transport, items: Sequence[tuple[str, int | None]]) -> dict[str, tuple[str, int]]:
    """sha256 and size of remote regular files, in one command per batch. A path is absent from the answer when it
    is not a regular file; its sha256 reads "~" when an expected size was given and differs (stale, not hashed)."""
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(items), _BATCH):
        batch = items[start : start + _BATCH]
        args = [x for path, size in batch for x in (path, "any" if size is None else str(size))]
        result = transport.run(["sh", "-c", _REMOTE_HASHES, "sh", *args])
        lines = result.stdout.splitlines()
        if not result.ok or len(lines) != len(batch):
            raise StagingError(
                f"hashing {len(batch)} files on {transport.name} failed (rc {result.returncode}): "
                f"{result.stderr.strip()[-500:]}"
            )
        for (path, _), line in zip(batch, lines, strict=True):
            if line != "-":
                sha, size = line.split(" ")
                found[path] = (sha, int(size))
    return found


def _finish(files: list[TransferredFile], started: float, what: str) -> TransferResult:
    moved = sum(f.size for f in files if f.action != "skipped")
    result = TransferResult(
        files=tuple(files),
        bytes=moved,
        skipped=sum(f.action == "skipped" for f in files),
        repaired=sum(f.action == "repaired" for f in files),
        seconds=time.monotonic() - started,
    )
    log.info(
        "%s: %d files, %.1f MiB moved in %.2f s (%.1f MB/s), %d skipped, %d repaired",
        what,
        len(files),
        moved / 2**20,
        result.seconds,
        result.mb_per_s,
        result.skipped,
        result.repaired,
    )
    return result
