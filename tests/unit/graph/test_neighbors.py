"""Exact kNN in blocks: equal to a brute force over the full similarity matrix, whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest

from corpusbridge.graph.neighbors import knn_blocks, recall_at_k


def _vectors(n: int = 300, d: int = 16) -> np.ndarray:
    rng = np.random.default_rng(4)
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_blocks_equal_the_brute_force(block: int) -> None:
    vectors = _vectors()
    found = np.concatenate([b.indices for b in knn_blocks(vectors, k=10, block=block)])
    full = vectors @ vectors.T
    np.fill_diagonal(full, -np.inf)
    expected = np.argsort(-full, axis=1, kind="stable")[:, :10]
    assert (found == expected).all()
    assert recall_at_k(expected, found) == 1.0


def test_k_above_the_corpus_and_ties_are_deterministic() -> None:
    vectors = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], np.float32)
    (block,) = list(knn_blocks(vectors, k=10))
    assert block.indices.shape == (4, 3) and block.indices[0].tolist() == [1, 2, 3]
    assert block.scores[0].tolist() == [1.0, 1.0, 0.0]
