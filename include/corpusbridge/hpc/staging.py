"""Verified, resumable file staging between this machine and a cluster scratch dir, over any `Transport`.

Stage in: every file lands in the scratch dir under its base name (a folder keeps its own name and layout), is
hashed on the cluster after upload and compared with the local sha256; a file already there with the right hash
is skipped, so a rerun after an interrupt only moves what is missing or damaged. Fetch is the mirror image:
remote globs into a local folder, hashed on both sides. Remote hashes are computed for many files in ONE
command (one round trip per batch, not per file) with `openssl` (SHA-NI accelerated) when the cluster has it.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from corpusbridge.hashing import file_sha256
from corpusbridge.hpc.confinement import ScratchEscapeError, confine, confine_patterns
from corpusbridge.hpc.transport import POSIX_SHA256_FUNCTION, BulkDownload, BulkUpload, Transport

log = logging.getLogger(__name__)
__all__ = ["ScratchEscapeError", "StagingError", "TransferResult", "confine", "confine_patterns", "fetch", "stage_in"]

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


# What stage_in does with a symbolic link inside a staged folder: refuse it (the default: following it would
# upload whatever it points to, e.g. ~/.ssh), or recreate it on the cluster as a link with the same target text.
Symlinks = Literal["refuse", "links"]
SYMLINK_CHOICES: tuple[Symlinks, ...] = ("refuse", "links")
# Creates each (link, target) pair as a symbolic link, replacing a file or link there (never a folder).
_MAKE_LINKS = (
    'while [ $# -gt 1 ]; do mkdir -p -- "$(dirname -- "$1")" && rm -f -- "$1" && ln -s -- "$2" "$1" '
    '&& [ "$(readlink -- "$1"; echo .)" = "$2\n." ] || { echo "$1" >&2; exit 1; }; shift 2; done'
)


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


@dataclass(frozen=True)
class _Link:
    local: Path
    remote: str
    target: str


# -- stage in --------------------------------------------------------------------------------------------------
def stage_in(
    transport: Transport, sources: Iterable[Path], remote_dir: str, *, symlinks: Symlinks = "refuse"
) -> TransferResult:
    """Copy local files/folders into `remote_dir` (created), verified by sha256 on the remote side, resumable.

    Every target is checked, resolved on the cluster, to lie inside `remote_dir` before anything moves. A source
    named on the command line is followed when it is a link (as `cp -H` does); a link inside a folder is refused,
    or recreated as a link with `symlinks="links"`."""
    started = time.monotonic()
    plan, links = _plan(sources, remote_dir, symlinks)
    confine(transport, [p.remote for p in plan] + [posixpath.dirname(link.remote) for link in links], remote_dir)
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
    files += _make_links(transport, links)
    return _finish(files, started, f"staged into {transport.name}:{remote_dir}")


def _make_links(transport: Transport, links: list[_Link]) -> list[TransferredFile]:
    """Recreate symbolic links on the cluster with their local target text, checked by reading them back."""
    for start in range(0, len(links), _BATCH):
        batch = links[start : start + _BATCH]
        result = transport.run(["sh", "-c", _MAKE_LINKS, "sh", *(x for k in batch for x in (k.remote, k.target))])
        if not result.ok:
            raise StagingError(
                f"stage_in: creating the symbolic link {result.stderr.strip()[-300:]} on {transport.name} failed "
                "(a folder in the way?); remove it on the cluster or stage without symlinks='links'"
            )
    return [TransferredFile(str(k.local), k.remote, 0, "", "copied") for k in links]


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
            "%s: the remote copy %s differs from this one (sha256 %s: damaged, or written by an earlier run from "
            "other bytes, e.g. a dictionary artifact rebuilt elsewhere); uploaded again",
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


def plan_stage_in(sources: Iterable[Path], remote_dir: str, *, symlinks: Symlinks = "refuse") -> list[_Planned]:
    """Where each local file goes; two sources that would land on the same remote name are an error."""
    return _plan(sources, remote_dir, symlinks)[0]


def _plan(sources: Iterable[Path], remote_dir: str, symlinks: Symlinks) -> tuple[list[_Planned], list[_Link]]:
    if symlinks not in SYMLINK_CHOICES:
        raise ValueError(f"stage_in: symlinks={symlinks!r} is not one of {SYMLINK_CHOICES}")
    plan: dict[str, _Planned | _Link] = {}
    for source in sources:
        source = Path(os.path.abspath(source))  # "x/.." names its parent, never ".." (which would leave scratch)
        if not source.exists():
            raise FileNotFoundError(f"stage_in: {source} does not exist; fix the path in stage_in")
        if not source.name:
            raise ScratchEscapeError(f"stage_in: {source} has no name to land under in scratch; name a folder in it")
        for local, relative, link in _entries_under(source, symlinks):
            remote = str(PurePosixPath(remote_dir, relative))
            if remote in plan:
                raise StagingError(
                    f"stage_in: {plan[remote].local} and {local} would both land on {remote}; "
                    "rename one of them or stage them from separate folders"
                )
            plan[remote] = _Link(local, remote, link) if link is not None else _Planned(local, remote, _size(local))
    return [p for p in plan.values() if isinstance(p, _Planned)], [p for p in plan.values() if isinstance(p, _Link)]


def _entries_under(source: Path, symlinks: Symlinks) -> list[tuple[Path, str, str | None]]:
    """(local path, path relative to the target folder, link target or None) for every entry to stage.
    Links are never followed below `source`; special files (FIFOs, sockets, devices) are refused."""
    if not source.is_dir():
        return [(source, source.name, None)]
    entries: list[tuple[Path, str, str | None]] = []
    for folder, dirs, names in os.walk(source):  # followlinks=False: a linked folder is listed in `dirs`, not entered
        for name in sorted(dirs + names):
            path = Path(folder, name)
            relative = str(PurePosixPath(source.name, *path.relative_to(source).parts))
            if path.is_symlink():
                if symlinks == "refuse":
                    raise StagingError(
                        f"stage_in: {path} is a symbolic link (to {os.readlink(path)}); following it would upload "
                        "what it points to. Remove it, or stage links as links (SlurmOperator "
                        "stage_in_symlinks='links')"
                    )
                entries.append((path, relative, os.readlink(path)))
            elif name in names:
                entries.append((path, relative, None))
    return entries


def _size(local: Path) -> int:
    st = local.stat()
    if not stat.S_ISREG(st.st_mode):
        raise StagingError(f"stage_in: {local} is not a regular file or folder (a FIFO or device?); remove it")
    return st.st_size


# -- fetch -----------------------------------------------------------------------------------------------------
def fetch(
    transport: Transport,
    patterns: Sequence[str],
    local_dir: Path,
    *,
    require_match: bool = True,
    within: str | None = None,
) -> TransferResult:
    """Download the remote files matching `patterns` into `local_dir` under their base names, verified by sha256;
    files already there with the right hash are skipped. A pattern matching nothing is an error unless
    `require_match=False` (a missing output should not look like an empty one).

    With `within` (a run's scratch folder), relative patterns are taken from there, and every pattern and every
    match (resolved on the cluster, symlinks followed) must lie inside it: ScratchEscapeError before any download."""
    started = time.monotonic()
    if within is not None:
        patterns = confine_patterns(patterns, within)
    remote_files = _expand(transport, patterns, require_match)
    if within is not None:
        confine(transport, remote_files, within)
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
