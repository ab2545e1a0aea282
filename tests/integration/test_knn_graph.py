"""The document similarity graph on real components: vectors in the embedded PostgreSQL, the kNN job as local
subprocesses and as a SLURM array on the sandbox, loaded exactly once; `similar` and `graph recall` read it."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest

from corpusbridge.cli import main
from corpusbridge.graph.neighbors_job import KnnOptions, run_knn_graph
from corpusbridge.load.ledger import Provenance

pytestmark = pytest.mark.integration

DOCS, DIM, K = 60, 384, 5


def _vectors(seed: int = 11) -> np.ndarray:
    """Unit vectors around 6 topics, so neighbours are meaningful (and HNSW has something to find)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((6, DIM))
    v = centres[np.arange(DOCS) % 6] + 0.6 * rng.standard_normal((DOCS, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _put(conn: psycopg.Connection, vectors: np.ndarray) -> list[str]:
    ids = [f"doc:{i:03d}" for i in range(len(vectors))]
    with conn.transaction():
        conn.execute("DELETE FROM document_vectors")
        for doc_id, row in zip(ids, vectors, strict=True):
            text = "[" + ",".join(f"{x:.9g}" for x in row) + "]"
            conn.execute("INSERT INTO document_vectors VALUES (%s, %s::vector, 'b', 0)", (doc_id, text))
    return ids


def _brute_force(ids: list[str], vectors: np.ndarray) -> dict[tuple[str, int], tuple[str, float]]:
    full = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(full, -np.inf)
    order = np.argsort(-full, axis=1, kind="stable")[:, :K]
    return {(ids[q], r + 1): (ids[n], full[q, n]) for q in range(len(ids)) for r, n in enumerate(order[q])}


def _graph(conn: psycopg.Connection) -> dict[tuple[str, int], tuple[str, float]]:
    rows = conn.execute("SELECT doc_id, rank, neighbor_id, cosine FROM document_neighbors").fetchall()
    return {(d, r): (n, c) for d, r, n, c in rows}


def _assert_exact(conn: psycopg.Connection, ids: list[str], vectors: np.ndarray) -> None:
    found, expected = _graph(conn), _brute_force(ids, vectors)
    assert found.keys() == expected.keys()
    assert {key: n for key, (n, _) in found.items()} == {key: n for key, (n, _) in expected.items()}
    assert max(abs(found[key][1] - expected[key][1]) for key in found) < 1e-5


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_local_graph_is_exact_loads_once_and_similar_reads_it(db, db_uri, tmp_path: Path, capsys) -> None:
    vectors = _vectors()
    ids = _put(db, vectors)
    argv = ["graph", "neighbors", "--backend", "local", "--k", str(K), "--parts", "3", "--out", str(tmp_path),
            "--device", "cpu", "--db", db_uri]  # fmt: skip
    first = _cli(capsys, *argv)
    assert (first["vectors"], first["compute"]["shards"], first["compute"]["skipped"]) == (DOCS, 3, 0)
    assert (first["load"]["loaded"], first["load"]["docs"], first["load"]["edges"]) == (True, DOCS, DOCS * K)
    _assert_exact(db, ids, vectors)

    again = _cli(capsys, *argv)  # nothing computed, nothing loaded
    assert (again["compute"]["skipped"], again["load"]["loaded"]) == (3, False)
    assert again["load"]["graph_id"] == first["load"]["graph_id"]
    assert db.execute("SELECT count(*), count(DISTINCT graph_id) FROM document_neighbors").fetchone() == (DOCS * K, 1)
    assert db.execute("SELECT count(*) FROM neighbor_graphs").fetchone()[0] == 1

    similar = _cli(capsys, "similar", ids[7], "--limit", "3", "--db", db_uri)
    assert similar["source"] == "knn_graph" and similar["graph_id"] == first["load"]["graph_id"]
    expected = _brute_force(ids, vectors)
    assert [n["doc_id"] for n in similar["neighbours"]] == [expected[(ids[7], r)][0] for r in (1, 2, 3)]
    wider = _cli(capsys, "similar", ids[7], "--limit", str(K + 1), "--db", db_uri)  # more than the graph holds
    assert wider["source"] == "hnsw" and len(wider["neighbours"]) == K + 1

    recall = _cli(capsys, "graph", "recall", "--k", str(K), "--db", db_uri)
    assert (recall["k"], recall["docs"], recall["graph_id"]) == (K, DOCS, first["load"]["graph_id"])
    assert 0.8 <= recall["recall_at_k"] <= 1.0  # HNSW on 60 clustered vectors finds nearly all


def test_new_vectors_replace_the_graph_in_one_load(db, db_uri, tmp_path: Path) -> None:
    options = KnnOptions("local", K, 2, "cpu", tmp_path)
    _put(db, _vectors(seed=1))
    first = run_knn_graph(db, options, Provenance("first"))
    vectors = _vectors(seed=2)
    ids = _put(db, vectors)
    second = run_knn_graph(db, options, Provenance("second", image_digest="sha256:abc"))
    assert second["load"]["loaded"] and second["load"]["graph_id"] != first["load"]["graph_id"]
    _assert_exact(db, ids, vectors)
    assert db.execute("SELECT DISTINCT graph_id FROM document_neighbors").fetchall() == [(second["load"]["graph_id"],)]
    rows = db.execute("SELECT run_label, image_digest, current FROM neighbor_graphs ORDER BY graph_id").fetchall()
    assert rows == [("first", None, False), ("second", "sha256:abc", True)]


def test_the_plan_names_the_parts_left_and_the_current_graph(db, tmp_path: Path) -> None:
    """What the DAG's neighbors_prepare decides from: parts not yet verified here, and whether the current graph is
    this work's (same vectors, k and split) so nothing needs computing or loading."""
    from corpusbridge.graph.neighbors_job import knn_out_dir, plan_knn

    _put(db, _vectors())
    before = plan_knn(db, tmp_path, k=K, parts=3, device="cpu")
    assert (before.pending, before.current) == ([0, 1, 2], None)
    assert before.out == knn_out_dir(tmp_path, before.source, K, 3) == tmp_path / before.source.path.stem / f"k{K}-p3"
    done = run_knn_graph(db, KnnOptions("local", K, 3, "cpu", tmp_path), Provenance("plan"))
    after = plan_knn(db, tmp_path, k=K, parts=3, device="cpu")
    assert (after.pending, after.current, after.source.sha256) == ([], done["load"]["graph_id"], before.source.sha256)
    assert plan_knn(db, tmp_path, k=K + 1, parts=3).current is None, "another k is another graph"
    assert plan_knn(db, tmp_path, k=K, parts=2).current is None, "another split is another graph"
    _put(db, _vectors(seed=4))
    changed = plan_knn(db, tmp_path, k=K, parts=3)
    assert (changed.pending, changed.current) == ([0, 1, 2], None), "new vectors: everything to do"


def test_a_damaged_part_is_not_loaded_and_the_previous_graph_stays(db, tmp_path: Path) -> None:
    from corpusbridge.compute.neighbors import KnnWork, run_neighbors_local
    from corpusbridge.graph.knn_files import export_vectors
    from corpusbridge.graph.neighbors_load import NeighborsLoadError, load_neighbors

    _put(db, _vectors())
    first = run_knn_graph(db, KnnOptions("local", K, 1, "cpu", tmp_path / "a"), Provenance("first"))
    _put(db, _vectors(seed=3))
    source = export_vectors(db, tmp_path / "b")
    assert run_neighbors_local(KnnWork(source, K, 2, "cpu"), tmp_path / "b" / "out").ok
    part = tmp_path / "b" / "out" / "neighbors-1.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(NeighborsLoadError, match=r"parts \[1\].*run the kNN job again"):
        load_neighbors(db, tmp_path / "b" / "out", input_sha256=source.sha256, k=K, parts=2,
                       provenance=Provenance("second"))  # fmt: skip
    assert db.execute("SELECT DISTINCT graph_id FROM document_neighbors").fetchall() == [(first["load"]["graph_id"],)]
    again = run_neighbors_local(KnnWork(source, K, 2, "cpu"), tmp_path / "b" / "out")  # recomputes only part 1
    assert (again.skipped, again.failed) == (1, {})


def _rewrite_part(out: Path, index: int, table, rows: int | None = None) -> None:
    """What a buggy (or foreign) kNN job would leave: a part whose entry verifies (sha256 rewritten) but whose
    content the load must still not trust."""
    from dataclasses import replace

    import pyarrow.parquet as pq

    from corpusbridge.graph.knn_files import PartEntry, part_entry_name
    from corpusbridge.hashing import file_sha256

    pq.write_table(table, out / f"neighbors-{index}.parquet")
    entry = PartEntry.read(out / part_entry_name(index))
    digest = file_sha256(out / f"neighbors-{index}.parquet")
    replace(entry, sha256=digest, rows=table.num_rows if rows is None else rows).write(out)


def test_the_load_trusts_no_part_beyond_its_checksum(db, tmp_path: Path) -> None:
    """Columns in another order load by name; ids without a loaded vector, or a row count that disagrees with the
    entry, fail the load by name and leave the previous graph."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from corpusbridge.compute.neighbors import KnnWork, run_neighbors_local
    from corpusbridge.graph.knn_files import export_vectors
    from corpusbridge.graph.neighbors_load import NeighborsLoadError, load_neighbors

    vectors = _vectors(seed=8)
    ids = _put(db, vectors)
    source = export_vectors(db, tmp_path)
    out = tmp_path / "out"
    assert run_neighbors_local(KnnWork(source, K, 2, "cpu"), out).ok
    original = pq.read_table(out / "neighbors-0.parquet")

    def load(label: str) -> dict:
        return load_neighbors(db, out, input_sha256=source.sha256, k=K, parts=2, provenance=Provenance(label)).as_dict()

    _rewrite_part(out, 0, original.select(["cosine", "rank", "neighbor_id", "doc_id"]))
    first = load("reordered")
    _assert_exact(db, ids, vectors)

    foreign = pc.replace_substring(original.column("neighbor_id"), ids[1], "doc:elsewhere")
    _rewrite_part(out, 0, original.set_column(1, "neighbor_id", foreign))
    with pytest.raises(NeighborsLoadError, match=r"without a loaded vector.*doc:elsewhere"):
        load("foreign")
    _rewrite_part(out, 0, original, rows=original.num_rows - 1)
    with pytest.raises(NeighborsLoadError, match=f"list {DOCS * K - 1} rows but hold {DOCS * K}"):
        load("miscounted")
    assert db.execute("SELECT DISTINCT graph_id FROM document_neighbors").fetchall() == [(first["graph_id"],)]
    assert db.execute("SELECT count(*) FROM neighbor_graphs").fetchone()[0] == 1


def test_without_a_graph_similar_answers_from_hnsw(db, db_uri, capsys) -> None:
    ids = _put(db, _vectors())
    out = _cli(capsys, "similar", ids[0], "--limit", "3", "--db", db_uri)
    assert (out["source"], out["graph_id"], len(out["neighbours"])) == ("hnsw", None, 3)


@pytest.mark.slurm
def test_slurm_graph_is_exact_and_a_rerun_submits_nothing(db, hpc_sandbox, tmp_path: Path) -> None:
    vectors = _vectors(seed=5)
    ids = _put(db, vectors)
    slurm = {"options": {"time": "00:05:00"}, "poll_seconds": 1.0, "label": uuid.uuid4().hex}
    options = KnnOptions("slurm", K, 3, "cpu", tmp_path, hpc_sandbox.settings(), sys.executable, slurm)
    first = run_knn_graph(db, options, Provenance("slurm-test"))
    assert first["compute"]["backend"] == "slurm" and len(first["compute"]["job_ids"]) == 1
    assert first["compute"]["submitted"] == [0, 1, 2] and first["load"]["loaded"]
    _assert_exact(db, ids, vectors)
    again = run_knn_graph(db, options, Provenance("slurm-test"))
    assert (again["compute"]["job_ids"], again["compute"]["skipped"], again["load"]["loaded"]) == ([], 3, False)
    assert db.execute("SELECT count(*) FROM document_neighbors").fetchone()[0] == DOCS * K


@pytest.mark.slurm
def test_slurm_part_damaged_on_the_cluster_is_computed_again(db, hpc_sandbox, openssh_transport, tmp_path) -> None:
    """A part whose output on the cluster is bad fails the fetch's verification; its marker goes, so the next run
    submits exactly that index again."""
    from corpusbridge.compute.neighbors import KnnWork, _job_spec, run_neighbors_slurm
    from corpusbridge.graph.knn_files import export_vectors

    _put(db, _vectors(seed=6))
    work = KnnWork(export_vectors(db, tmp_path), K, 2, "cpu")
    kwargs = {"python": sys.executable, "options": {"time": "00:05:00"}, "poll_seconds": 1.0,
              "label": uuid.uuid4().hex}  # fmt: skip
    out = tmp_path / "out"
    assert run_neighbors_slurm(openssh_transport, hpc_sandbox.scratch_root, work, out, **kwargs).ok
    scratch = _job_spec(hpc_sandbox.scratch_root, work, sys.executable, None, kwargs["options"], kwargs["label"], None)
    remote = Path(scratch.scratch) / "out" / "neighbors-1.parquet"  # the sandbox's node is this machine
    remote.write_bytes(remote.read_bytes()[:-20] + b"\0" * 20)
    (out / "neighbors-1.parquet").unlink()
    damaged = run_neighbors_slurm(openssh_transport, hpc_sandbox.scratch_root, work, out, **kwargs)
    assert list(damaged.failed) == [1] and damaged.submitted == []
    healed = run_neighbors_slurm(openssh_transport, hpc_sandbox.scratch_root, work, out, **kwargs)
    assert (healed.failed, healed.submitted, healed.skipped) == ({}, [1], 1)
