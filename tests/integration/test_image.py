"""The compute image (scripts/build-image.sh) run the way the cluster runs it: the payload inside it under the sandbox
SLURM through `apptainer exec` (here the sandbox's squashfuse + bwrap runner) gives the same bytes as the payload on
the workstation, and the Apptainer definition's %test passes against it.

The image is built on first use (a few minutes) and reused while its labels match locks/compute.txt and the library's
sources; the tests skip, with the build's message, only where its Debian packages cannot be had (not root, no apt)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corpusbridge.hpc import script

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "sandbox-apptainer"
IMAGE_DIR = Path(os.environ.get("IMAGE_OUT", ROOT / "build" / "image"))
IMAGE = IMAGE_DIR / "corpusbridge-compute.sqfs"
LABEL = IMAGE_DIR / "corpusbridge-compute.label.json"
TERMS = {"lung": "C1", "lung cancer": "C2", "small cell lung cancer": "C3", "cell": "C4", "cell line": "C5"}


@dataclass(frozen=True)
class Image:
    path: Path
    digest: str  # sha256:<hex>
    labels: dict[str, str]


def source_hash() -> str:
    """Same as build-image.sh's source_hash: sha256 of the `sha256sum` lines of the library's sources, sorted."""
    files = [ROOT / "pyproject.toml", ROOT / "README.md"]
    files += [p for p in (ROOT / "include").rglob("*") if p.is_file()]
    names = sorted(
        p.relative_to(ROOT).as_posix()
        for p in files
        if "__pycache__" not in p.parts and not any(s.endswith(".egg-info") for s in p.parts) and p.suffix != ".pyc"
    )
    lines = "".join(f"{hashlib.sha256((ROOT / n).read_bytes()).hexdigest()}  {n}\n" for n in names)
    return hashlib.sha256(lines.encode()).hexdigest()


def _is_current() -> bool:
    if not (IMAGE.exists() and LABEL.exists() and IMAGE.with_name(IMAGE.name + ".sha256").exists()):
        return False
    labels = json.loads(LABEL.read_text())
    lock = hashlib.sha256((ROOT / "locks" / "compute.txt").read_bytes()).hexdigest()
    return labels.get("org.corpusbridge.lock-sha256") == lock and labels.get("org.corpusbridge.source-sha256") == (
        source_hash()
    )


def _build() -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-image.sh")], capture_output=True, text=True, timeout=3600, check=False
    )
    if proc.returncode == 77:
        pytest.skip(f"compute image cannot be built here: {proc.stderr.strip()[-500:]}")
    assert proc.returncode == 0, f"scripts/build-image.sh failed:\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="session")
def compute_image() -> Image:
    """The current compute image, built when missing or stale (the script builds one at a time per folder)."""
    if not _is_current():
        _build()
    hex_digest = IMAGE.with_name(IMAGE.name + ".sha256").read_text().split()[0]
    return Image(IMAGE, f"sha256:{hex_digest}", json.loads(LABEL.read_text()))


@pytest.fixture(scope="session")
def runner() -> Path:
    missing = [tool for tool in ("squashfuse", "bwrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the sandbox container runner needs {missing}: apt-get install squashfuse bubblewrap fuse3")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse on this machine: squashfuse cannot mount the image")
    return RUNNER


def _write_batch(folder: Path) -> dict[str, Path]:
    """One real shard (export's schema and manifest) and a built dictionary, as the export stage leaves them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpusbridge.export.manifest import ExportManifest, ShardEntry, write_manifest
    from corpusbridge.export.schema import SHARD_SCHEMA, schema_fingerprint
    from corpusbridge.extract.dictionary import build_dictionary
    from corpusbridge.hashing import file_sha256

    words = "the of patients with small cell lung cancer lines tumor growth and in study results".split()
    texts = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12 + i % 9)) + "." for i in range(120)]
    texts[5] = None  # type: ignore[call-overload]
    table = pa.table(
        {
            "doc_id": [f"doc-{i:04d}" for i in range(120)],
            "text": texts,
            "title": [f"Title {i}" for i in range(120)],
            "year": pa.array([2000 + i % 20 for i in range(120)], pa.int32()),
        },
        schema=SHARD_SCHEMA,
    )
    (folder / "export").mkdir(parents=True)
    shard = folder / "export" / "shard-00000.parquet"
    pq.write_table(table, shard, row_group_size=32)
    manifest = folder / "export" / "manifest.json"
    entry = ShardEntry(0, shard.name, 120, file_sha256(shard))
    write_manifest(manifest, ExportManifest("image-test", schema_fingerprint(SHARD_SCHEMA), [entry]))
    terms = folder / "terms.tsv"
    terms.write_text("concept_id\tterm\n" + "".join(f"{c}\t{t}\n" for t, c in TERMS.items()), encoding="utf-8")
    build_dictionary(terms, folder / "dictionary")
    return {"manifest": manifest, "dictionary": folder / "dictionary"}


def _payload(batch: dict[str, Path], out: Path, python: str) -> list[str]:
    return [python, "-m", "corpusbridge.extract", "--manifest", str(batch["manifest"]), "--index", "0",
            "--dictionary", str(batch["dictionary"]), "--out", str(out), "--workers", "1", "--json"]  # fmt: skip


@pytest.fixture
def scratch(hpc_sandbox) -> Iterator[Path]:
    """A run folder under the sandbox cluster's scratch root (this machine is the cluster's only node)."""
    folder = Path(hpc_sandbox.scratch_root) / f"image-test-{uuid.uuid4().hex[:10]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slurm
def test_payload_in_the_image_under_slurm_writes_the_workstations_bytes(
    compute_image: Image, runner: Path, hpc_sandbox, scratch: Path, db
) -> None:
    if shutil.which("apptainer") is None:
        pytest.skip("no `apptainer` on PATH: scripts/hpc-sandbox.sh up installs the sandbox runner as root")
    batch = _write_batch(scratch)
    local = subprocess.run(_payload(batch, scratch / "workstation", sys.executable), capture_output=True, text=True)
    assert local.returncode == 0, local.stderr[-2000:]

    command = " ".join(map(_quote, _payload(batch, scratch / "image", "python")))
    command += ' && printenv CORPUSBRIDGE_IMAGE_DIGEST > "$CORPUSBRIDGE_SCRATCH/digest.txt"'
    container = script.Container(str(compute_image.path), "apptainer")
    job = scratch / "job.sh"
    job.write_text(script.batch_script(command, str(scratch), job_name="image-test", container=container))
    sbatch = hpc_sandbox.ssh_argv(
        "sbatch", "--parsable", "--wait", "--time=10", f"--output={scratch}/slurm.out", str(job)
    )
    proc = subprocess.run(sbatch, capture_output=True, text=True, timeout=900, check=False)
    log = (scratch / "slurm.out").read_text() if (scratch / "slurm.out").exists() else ""
    assert proc.returncode == 0, f"{proc.stderr}\n{log[-3000:]}"

    for name in ("concepts-0.parquet", "vectors-0.parquet"):
        ours, theirs = (scratch / "workstation" / name).read_bytes(), (scratch / "image" / name).read_bytes()
        assert ours == theirs, f"{name} differs between the workstation and the image"
    assert (scratch / "digest.txt").read_text().strip() == compute_image.digest
    result = json.loads((scratch / "image" / "result-0.json").read_text())
    assert result["image_digest"] == compute_image.digest
    assert json.loads((scratch / "workstation" / "result-0.json").read_text())["image_digest"] is None
    _assert_loaded_rows_name_the_image(db, batch, scratch / "image", compute_image.digest)


def _assert_loaded_rows_name_the_image(db, batch: dict[str, Path], results: Path, digest: str) -> None:
    """The load takes the digest from the verified result: the ledger row, and through it every loaded row."""
    from load_support import Batch, register_batch

    from corpusbridge.extract.dictionary import read_version
    from corpusbridge.load.stage import Provenance, run_load

    register_batch(db, Batch(batch["manifest"], results, "image-test", read_version(batch["dictionary"]), []))
    loaded = run_load(db, batch["manifest"], results, provenance=Provenance("test__image"))
    assert loaded.docs_loaded == 120 and loaded.reconciled
    rows = db.execute(
        "SELECT l.image_digest, count(*) FROM document_concepts c JOIN load_ledger l USING (batch_id, shard) "
        "GROUP BY 1 UNION ALL SELECT l.image_digest, count(*) FROM document_vectors v "
        "JOIN load_ledger l USING (batch_id, shard) GROUP BY 1"
    ).fetchall()
    assert {row[0] for row in rows} == {digest} and rows[1][1] == 120


@pytest.mark.slurm
def test_corpusbridge_run_in_the_image_records_its_digest_on_every_row(
    compute_image: Image, runner: Path, hpc_sandbox, scratch: Path, db_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`corpusbridge run --backend slurm --container IMAGE`: the payload runs in the image, the rows name it."""
    if shutil.which("apptainer") is None:
        pytest.skip("no `apptainer` on PATH: scripts/hpc-sandbox.sh up installs the sandbox runner as root")
    import psycopg

    from corpusbridge.cli import main

    monkeypatch.setenv("CORPUSBRIDGE_HOME", str(scratch / "home"))
    connection = json.loads(hpc_sandbox.connection_json())
    connection["extra"] = dict(connection["extra"]) | {"scratch_root": str(scratch / "cluster")}
    monkeypatch.setenv("AIRFLOW_CONN_CORPUSBRIDGE_HPC", json.dumps(connection))
    corpora = ROOT / "tests" / "fixtures" / "corpora"
    code = main(["run", "--backend", "slurm", "--source", str(corpora), "--db", db_uri, "--no-embeddings",
                 "--container", str(compute_image.path), "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["docs_exported"] == out["docs_processed"] == out["docs_loaded"] > 0, out
    with psycopg.connect(db_uri) as conn:
        digests = conn.execute(
            "SELECT DISTINCT l.image_digest FROM document_results r JOIN load_ledger l USING (batch_id, shard)"
        ).fetchall()
    assert digests == [(compute_image.digest,)]


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def test_definition_test_section_passes_in_the_image(compute_image: Image, runner: Path) -> None:
    """docker/corpusbridge.def's %test, run as `apptainer test` would run it, inside the image from `make image`."""
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from test_docker import def_sections

    _, sections = def_sections((ROOT / "docker" / "corpusbridge.def").read_text())
    proc = subprocess.run(
        [str(runner), "exec", str(compute_image.path), "/bin/sh", "-c", sections["test"]],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tiny extraction ok" in proc.stdout


def test_image_is_read_only_isolated_and_labelled(compute_image: Image, runner: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("bound\n")
    probe = (
        "cat /data/in.txt; touch /opt/venv/x 2>/dev/null && echo writable || echo read-only; "
        "echo pid1=$(cat /proc/1/comm); python -c 'import sys; print(sys.executable)'; "
        'test -e /work && echo host-visible || echo host-hidden; echo "$CORPUSBRIDGE_IMAGE_DIGEST"'
    )
    proc = subprocess.run(
        [str(runner), "exec", "--bind", f"{tmp_path}:/data", str(compute_image.path), "/bin/bash", "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == "bound" and lines[1] == "read-only" and lines[2] == "pid1=bwrap"  # its own PID namespace
    assert lines[3] == "/opt/venv/bin/python" and lines[4] == "host-hidden" and lines[5] == compute_image.digest
    assert (
        compute_image.labels["org.corpusbridge.lock-sha256"]
        == hashlib.sha256((ROOT / "locks" / "compute.txt").read_bytes()).hexdigest()
    )
