"""The export manifest: which shards a batch has, how many rows each, and their sha256.

It is the contract between the workstation and the cluster: staging verifies it after upload and the payload
verifies its own shard against it before reading a byte of data.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_FORMAT = 1


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class ShardEntry:
    index: int
    path: str  # relative to the manifest's folder
    rows: int
    sha256: str


@dataclass(frozen=True)
class ExportManifest:
    batch_id: str
    schema_fingerprint: str
    shards: list[ShardEntry] = field(default_factory=list)
    # The payload's EXTRACTION_RULES the batch was exported for (part of its id); None: written before the field.
    extraction_rules: int | None = None

    def shard(self, index: int) -> ShardEntry:
        for entry in self.shards:
            if entry.index == index:
                return entry
        known = f"{self.shards[0].index}..{self.shards[-1].index}" if self.shards else "none"
        raise ManifestError(f"batch {self.batch_id}: no shard with index {index} (shards: {known})")

    @property
    def rows(self) -> int:
        return sum(entry.rows for entry in self.shards)


def write_json_atomic(path: Path, payload: object) -> None:
    """Write JSON under a temp name in the same folder, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(path: Path, manifest: ExportManifest) -> None:
    payload = {"format": MANIFEST_FORMAT, **asdict(manifest)}
    payload["shards"] = sorted(payload["shards"], key=lambda s: s["index"])
    write_json_atomic(path, payload)


def read_manifest(path: Path) -> ExportManifest:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        shards = [
            ShardEntry(int(s["index"]), str(s["path"]), int(s["rows"]), str(s["sha256"])) for s in payload["shards"]
        ]
        rules = payload.get("extraction_rules")
        manifest = ExportManifest(
            str(payload["batch_id"]), str(payload["schema_fingerprint"]), shards, None if rules is None else int(rules)
        )
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: manifest not found; check the path or re-run the export") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: not an export manifest ({exc!r}); re-run the export to rewrite it") from exc
    if payload.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: manifest format {payload.get('format')!r}, expected {MANIFEST_FORMAT}")
    return manifest


def shard_path(manifest_path: Path, entry: ShardEntry) -> Path:
    """Where a shard lives: its path is relative to the manifest's folder, so a staged copy moves as one."""
    return manifest_path.parent / entry.path
