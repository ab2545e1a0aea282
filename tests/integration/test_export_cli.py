"""`corpusbridge export` as a user types it: --json keys, the default folder, selection options, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sanitize_support import put_raw, raw_row

from corpusbridge.sanitize.stage import run_sanitize

pytestmark = pytest.mark.integration

BODY = "Patients were followed for fifty two weeks in a randomized double blind multicentre trial of {}."


def _export(db_uri: str, home: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORPUSBRIDGE_HOME": str(home)}
    argv = [sys.executable, "-m", "corpusbridge", "export", "--db", db_uri, "--json", *options]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_export_json_keys_default_folder_and_selection(db: psycopg.Connection, db_uri: str, tmp_path: Path) -> None:
    put_raw(db, *[raw_row(f"d{i}", title=f"T{i}", abstract=BODY.format(i), year=2010 + i) for i in range(5)])
    run_sanitize(db, workers=1)
    ids = tmp_path / "ids.txt"
    ids.write_text("# wanted\nd3\nd1\n\nd4\n", encoding="utf-8")
    proc = _export(db_uri, tmp_path / "home", "--all", "--doc-ids", str(ids), "--year-to", "2013", "--shard-rows", "1")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"batch_id", "shards", "docs_exported", "bytes", "seconds", "manifest"} <= out.keys()
    assert (out["shards"], out["docs_exported"]) == (2, 2) and out["bytes"] > 0
    assert Path(out["manifest"]) == tmp_path / "home" / "exports" / out["batch_id"] / "manifest.json"
    # Pending (the default): d1 and d3 are in flight in the first batch, so the other three go.
    pending = json.loads(_export(db_uri, tmp_path / "home", "--out", str(tmp_path / "x")).stdout)
    assert pending["docs_exported"] == 3 and Path(pending["manifest"]).parent.parent == tmp_path / "x"
    abandoned = json.loads(_export(db_uri, tmp_path / "home", "--abandon", out["batch_id"]).stdout)
    assert abandoned == {"batch_id": out["batch_id"], "status": "abandoned"}
    # d1 and d3 are pending again; another pending selection takes them (the year filter keeps it distinct).
    again = json.loads(_export(db_uri, tmp_path / "home", "--year-from", "2000").stdout)
    assert again["docs_exported"] == 2


def test_bad_options_are_named(db_uri: str, tmp_path: Path) -> None:
    proc = _export(db_uri, tmp_path, "--year-from", "2020", "--year-to", "2010")
    assert proc.returncode == 1 and "year_from 2020 is after year_to 2010" in json.loads(proc.stdout)["error"]
    proc = _export(db_uri, tmp_path, "--doc-ids", str(tmp_path / "missing.txt"))
    assert proc.returncode == 1 and "missing.txt" in json.loads(proc.stdout)["error"]
    proc = _export(db_uri, tmp_path, "--shard-rows", "0")
    assert proc.returncode == 2 and "must be >= 1" in proc.stderr
