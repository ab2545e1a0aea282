"""Both compute backends on a real exported batch: the local one here, the SLURM one on the sandbox over SSH.

The same inputs must give byte-identical result files on both. Concepts only (no embeddings): the vectors' bytes
are the payload's own concern, and CPU embeddings would make these tests slow.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sanitize_support import put_raw, raw_row

from corpusbridge.compute.dictionary import cached_dictionary
from corpusbridge.compute.local import run_local
from corpusbridge.compute.outputs import result_files
from corpusbridge.compute.slurm import run_slurm
from corpusbridge.export.manifest import read_manifest
from corpusbridge.export.selection import Selection
from corpusbridge.export.stage import run_export
from corpusbridge.extract.results import ResultEntry, result_name
from corpusbridge.sanitize.stage import run_sanitize

pytestmark = pytest.mark.integration

TOPICS = ["lung cancer screening", "asthma in children", "malaria vaccine trials", "heart failure outcomes"]
TERMS = "concept_id\tterm\nC1\tlung cancer\nC2\tasthma\nC3\tmalaria\nC4\theart failure\nC5\tchildren\n"


@pytest.fixture
def batch(db: psycopg.Connection, tmp_path: Path) -> dict[str, Path]:
    rows = [
        raw_row(
            f"doc-{i:03d}",
            title=f"On {TOPICS[i % 4]} ({i})",
            abstract=f"We studied {TOPICS[(i + 1) % 4]} in cohort {i}. Results on {TOPICS[i % 4]} were mixed.",
            year=2000 + i % 7,
        )
        for i in range(40)
    ]
    put_raw(db, *rows)
    run_sanitize(db, workers=1)
    terms = tmp_path / "terms.tsv"
    terms.write_text(TERMS, encoding="utf-8")
    dictionary = cached_dictionary(terms, tmp_path / "dictionaries")
    summary = run_export(db, Selection(dictionary_version=dictionary.version), tmp_path / "exports", shard_rows=15)
    assert summary.shards == 3 and summary.manifest
    return {"manifest": Path(summary.manifest), "dictionary": dictionary.path, "root": tmp_path}


def test_local_runs_every_shard_then_a_rerun_does_nothing(batch) -> None:
    out = batch["root"] / "results"
    summary = run_local(batch["manifest"], batch["dictionary"], out, embeddings=False, workers=1)
    assert (summary.shards, summary.docs_processed, summary.failed, summary.skipped) == (3, 40, {}, 0)
    for index in range(3):
        entry = ResultEntry.read(out / result_name(index))
        assert entry.outputs["concepts"].rows > 0 and "vectors" not in entry.outputs
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_local(batch["manifest"], batch["dictionary"], out, embeddings=False, workers=1)
    assert (again.skipped, again.docs_processed, again.failed) == (3, 40, {})
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_local_reports_a_failed_shard_and_runs_the_others(batch) -> None:
    manifest = read_manifest(batch["manifest"])
    damaged = batch["manifest"].parent / manifest.shard(1).path
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte in the middle: the footer still reads, the sha256 does not match
    damaged.write_bytes(bytes(data))
    out = batch["root"] / "results"
    summary = run_local(batch["manifest"], batch["dictionary"], out, embeddings=False, workers=1)
    assert sorted(summary.failed) == [1] and summary.failed[1].startswith("exit 2")
    assert "sha256" in summary.failed[1]
    assert summary.docs_processed == 25 and not (out / result_name(1)).exists()
    only = run_local(batch["manifest"], batch["dictionary"], out, embeddings=False, indices=[0, 2])
    assert (only.shards, only.skipped, only.failed) == (2, 2, {})


@pytest.mark.slurm
def test_slurm_gives_byte_identical_results_to_local(batch, hpc_sandbox, openssh_transport) -> None:
    local = run_local(batch["manifest"], batch["dictionary"], batch["root"] / "local", embeddings=False, workers=1)
    assert local.failed == {}
    slurm_out = batch["root"] / "slurm"
    summary = run_slurm(
        openssh_transport,
        hpc_sandbox.scratch_root,
        batch["manifest"],
        batch["dictionary"],
        slurm_out,
        embeddings=False,
        python=sys.executable,  # the sandbox's node is this machine: the same installed corpusbridge
        parallelism=2,
        options={"time": "00:05:00"},
        poll_seconds=1.0,
        label=uuid.uuid4().hex,  # the same batch in another test session would otherwise find this work done
    )
    assert (summary.failed, summary.docs_processed, summary.shards) == ({}, 40, 3)
    assert len(summary.job_ids) == 1
    for index in range(3):
        for name in result_files(index, embeddings=False):
            assert (slurm_out / name).read_bytes() == (batch["root"] / "local" / name).read_bytes(), name
    # A rerun finds every result verified locally: no staging, no job.
    again = run_slurm(openssh_transport, hpc_sandbox.scratch_root, batch["manifest"], batch["dictionary"], slurm_out,
                      embeddings=False, python=sys.executable, label="no job expected")  # fmt: skip
    assert (again.skipped, again.job_ids, again.failed) == (3, [], {})


@pytest.mark.slurm
def test_slurm_rerun_resubmits_only_the_failed_index(batch, hpc_sandbox, openssh_transport) -> None:
    manifest = read_manifest(batch["manifest"])
    shard = batch["manifest"].parent / manifest.shard(1).path
    good = shard.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF  # staged as is: the payload refuses it (sha256 differs from the manifest)
    shard.write_bytes(bytes(data))
    out = batch["root"] / "slurm"
    kwargs = {"embeddings": False, "python": sys.executable, "poll_seconds": 1.0, "options": {"time": "00:05:00"},
              "label": uuid.uuid4().hex}  # fmt: skip
    args = (openssh_transport, hpc_sandbox.scratch_root, batch["manifest"], batch["dictionary"], out)
    first = run_slurm(*args, **kwargs)
    assert sorted(first.failed) == [1] and first.submitted == [0, 1, 2] and first.docs_processed == 25
    assert "FAILED" in first.failed[1] and "sha256" in first.failed[1]
    shard.write_bytes(good)  # fixed on the workstation: staging sends it again, only index 1 runs again
    second = run_slurm(*args, **kwargs)
    assert (second.failed, second.submitted, second.skipped, second.docs_processed) == ({}, [1], 2, 40)
    assert set(second.job_ids).isdisjoint(first.job_ids)


def test_stopping_the_wait_says_the_job_keeps_running_and_a_rerun_reattaches(
    batch, hpc_sandbox, openssh_transport, monkeypatch, caplog
) -> None:
    """Ctrl-C while waiting stops this process, not the cluster's job: the log says so, names it and how to stop it,
    and the same call again re-attaches to it instead of submitting a second one."""
    from corpusbridge.compute import slurm

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    kwargs = {"embeddings": False, "python": sys.executable, "options": {"time": "00:05:00"}, "poll_seconds": 1.0,
              "label": uuid.uuid4().hex}  # fmt: skip
    out = batch["root"] / "slurm"
    real_wait = slurm.wait_for_indices
    monkeypatch.setattr(slurm, "wait_for_indices", interrupted)
    with caplog.at_level("WARNING"), pytest.raises(KeyboardInterrupt):
        run_slurm(openssh_transport, hpc_sandbox.scratch_root, batch["manifest"], batch["dictionary"], out, **kwargs)
    warning = next(r.getMessage() for r in caplog.records if "stopped waiting" in r.getMessage())
    job = warning.split("SLURM job(s) ")[1].split(" ")[0]
    assert "keep running" in warning and f"scancel {job}" in warning
    monkeypatch.setattr(slurm, "wait_for_indices", real_wait)
    again = run_slurm(
        openssh_transport, hpc_sandbox.scratch_root, batch["manifest"], batch["dictionary"], out, **kwargs
    )
    # Re-attached to the same job, or (if it finished meanwhile) its results fetched: never a second submission.
    assert (again.submitted, again.failed, again.docs_processed) == ([], {}, 40) and again.job_ids in ([job], [])
