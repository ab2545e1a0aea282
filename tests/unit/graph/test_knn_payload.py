"""The kNN payload per array index: the parts together equal one pass over every row, a damaged input is refused,
a part already done is not computed again."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpusbridge.graph.knn_files import KnnInputError, _vectors_table, part_range, verified_part
from corpusbridge.graph.knn_payload import compute_part, main
from corpusbridge.graph.neighbors import knn_blocks
from corpusbridge.hashing import file_sha256


def _input(folder: Path, n: int = 41, d: int = 12) -> tuple[Path, str, np.ndarray]:
    rng = np.random.default_rng(9)
    v = rng.standard_normal((n, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    path = folder / "vectors.parquet"
    pq.write_table(_vectors_table([f"d{i:02d}" for i in range(n)], v), path)
    return path, file_sha256(path), v


@pytest.mark.parametrize("parts", [1, 3, 41])
def test_part_ranges_cover_every_row_once(parts: int) -> None:
    ranges = [part_range(41, parts, i) for i in range(parts)]
    assert ranges[0][0] == 0 and ranges[-1][1] == 41
    assert all(a[1] == b[0] for a, b in pairwise(ranges))


def test_parts_together_equal_the_whole(tmp_path: Path) -> None:
    path, sha, vectors = _input(tmp_path)
    for index in range(3):
        compute_part(path, sha, tmp_path / "out", k=4, parts=3, index=index, device="cpu", block=5)
    rows = pq.read_table(sorted((tmp_path / "out").glob("neighbors-*.parquet"))).to_pylist()
    whole = np.concatenate([b.indices for b in knn_blocks(vectors, k=4)])
    assert [(r["doc_id"], r["rank"], r["neighbor_id"]) for r in rows] == [
        (f"d{q:02d}", rank + 1, f"d{n:02d}") for q in range(41) for rank, n in enumerate(whole[q])
    ]


def test_a_damaged_input_is_refused_and_a_done_part_is_kept(tmp_path: Path, capsys) -> None:
    path, sha, _ = _input(tmp_path)
    argv = ["--vectors", str(path), "--sha256", "0" * 64, "--out", str(tmp_path / "o"), "--index", "0", "--json"]
    assert main(argv) == 2 and "sha256" in capsys.readouterr().out
    with pytest.raises(KnnInputError, match="outside"):
        compute_part(path, sha, tmp_path / "o", k=3, parts=2, index=2)
    entry = compute_part(path, sha, tmp_path / "o", k=3, parts=2, index=1, device="cpu")
    again = compute_part(path, sha, tmp_path / "o", k=3, parts=2, index=1, device="cpu")
    assert again == entry and verified_part(tmp_path / "o", 1, sha, 3, 2) == entry
    assert verified_part(tmp_path / "o", 1, sha, 4, 2) is None  # another k: computed again
