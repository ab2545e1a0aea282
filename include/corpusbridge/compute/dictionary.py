"""The dictionary artifact, built once per dictionary version on the workstation and reused from a cache.

    cached = cached_dictionary(Path("terms.tsv"), home_dir() / "dictionaries")
    cached.path     # <cache_dir>/<version>/ : the artifact folder staged to the cluster (never rebuilt on nodes)
    cached.version  # sha256 of the normalized dictionary (corpusbridge.extract.dictionary computes it)

The version is only known after normalizing the terms, so the cache also remembers which terms file (by sha256)
gave which version: an unchanged terms file is never read again, let alone rebuilt. A terms file that normalizes to
a version already cached (the same dictionary in another layout) is built once more in a temp folder and dropped;
the published artifact is never replaced. Builds are serialized by a lock file and published by rename.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from corpusbridge.extract.dictionary import DictionaryError, build_dictionary, read_version
from corpusbridge.hashing import file_sha256

log = logging.getLogger(__name__)

_BY_TERMS = "by-terms"  # <terms sha256>.version -> the version that terms file built


@dataclass(frozen=True)
class CachedDictionary:
    """A built artifact folder and its version; `built` says whether this call had to build it."""

    path: Path
    version: str
    built: bool = False


def cached_dictionary(terms: Path, cache_dir: Path) -> CachedDictionary:
    """The artifact for `terms`, built under `cache_dir` only when its version is not cached yet."""
    if not terms.is_file():
        what = "is a directory, not a terms file" if terms.is_dir() else "dictionary terms file not found"
        raise DictionaryError(f"{terms}: {what}; give a TSV/CSV/JSONL of concept_id, term")
    cache_dir.mkdir(parents=True, exist_ok=True)
    alias = cache_dir / _BY_TERMS / f"{file_sha256(terms)}.version"
    found = _cached(cache_dir, alias)
    if found is not None:
        return found
    with _build_lock(cache_dir):
        found = _cached(cache_dir, alias)  # another process may have built it while we waited
        if found is not None:
            return found
        version, built = _build(terms, cache_dir)
        _write_alias(alias, version)
    return CachedDictionary(cache_dir / version, version, built)


def _cached(cache_dir: Path, alias: Path) -> CachedDictionary | None:
    """The artifact an alias points to, when it is there and says the same version."""
    try:
        version = alias.read_text(encoding="utf-8").strip()
        if read_version(cache_dir / version) == version:
            return CachedDictionary(cache_dir / version, version)
    except (OSError, DictionaryError):
        pass
    return None


def _build(terms: Path, cache_dir: Path) -> tuple[str, bool]:
    """Build into a temp folder, then publish it as `<cache_dir>/<version>` unless that version is already there."""
    staging = cache_dir / f".build-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        report = build_dictionary(terms, staging)
        final = cache_dir / report.version
        if _is_artifact(final, report.version):
            log.info("dictionary %s: already cached (another layout of the same terms)", report.version[:12])
            return report.version, False
        if final.exists():
            shutil.rmtree(final)  # a damaged copy (no meta.json or another version): replaced whole
        os.replace(staging, final)
        log.info("dictionary %s: built from %s into %s", report.version[:12], terms, final)
        return report.version, True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_artifact(folder: Path, version: str) -> bool:
    try:
        return read_version(folder) == version
    except DictionaryError:
        return False


def _write_alias(alias: Path, version: str) -> None:
    alias.parent.mkdir(exist_ok=True)
    tmp = alias.with_name(f".{alias.name}.tmp-{os.getpid()}")
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, alias)


@contextmanager
def _build_lock(cache_dir: Path) -> Iterator[None]:
    """One build at a time per cache folder (a second process waits, then finds the artifact cached)."""
    with open(cache_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
