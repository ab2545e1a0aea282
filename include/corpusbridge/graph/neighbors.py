"""Exact k nearest neighbours of every document by cosine similarity, in blocks of batched matrix products.

The vectors are unit length (the payload's MiniLM vectors are), so cosine similarity is a dot product: a block of
queries times the transposed corpus, then a partial sort per row. Memory is one block x corpus score matrix
(`block` rows, 4 bytes each), whatever the corpus size; the corpus itself is held once. On a GPU node with torch,
`device="cuda"` does the products and the top-k there. Ties break by the smaller row number, so the result is
deterministic. A document is never its own neighbour.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_K = 10


@dataclass(frozen=True)
class NeighbourBlock:
    first: int  # row number of the block's first query
    indices: np.ndarray  # (rows, k) neighbour row numbers, most similar first
    scores: np.ndarray  # (rows, k) cosine similarities


def knn_blocks(
    vectors: np.ndarray,
    *,
    k: int = DEFAULT_K,
    block: int = 2048,
    device: str = "cpu",
    start: int = 0,
    stop: int | None = None,
) -> Iterator[NeighbourBlock]:
    """The exact top-k of the rows `start:stop` of `vectors` (n, d) among all other rows, one block of queries at a
    time (a SLURM array index takes one such range of queries against the whole corpus)."""
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError(f"vectors of shape {vectors.shape}: need at least 2 rows of one dimension each")
    k = min(k, len(vectors) - 1)
    stop = len(vectors) if stop is None else min(stop, len(vectors))
    if device != "cpu":
        yield from _torch_blocks(vectors, k, block, device, range(start, stop))
        return
    corpus = np.ascontiguousarray(vectors, dtype=np.float32)
    for first in range(start, stop, block):
        scores = corpus[first : min(first + block, stop)] @ corpus.T
        rows = np.arange(len(scores))
        scores[rows, first + rows] = -np.inf  # never itself
        yield NeighbourBlock(first, *_top_k(scores, k))


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    candidates = np.argpartition(-scores, k, axis=1)[:, : k + 1] if k < scores.shape[1] - 1 else None
    if candidates is None:
        candidates = np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    picked = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -picked), axis=1)[:, :k]  # best first, ties to the smaller row
    indices = np.take_along_axis(candidates, order, axis=1)
    return indices, np.take_along_axis(scores, indices, axis=1)


def _torch_blocks(vectors: np.ndarray, k: int, block: int, device: str, queries: range) -> Iterator[NeighbourBlock]:
    import torch

    corpus = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)
    for first in range(queries.start, queries.stop, block):
        scores = corpus[first : min(first + block, queries.stop)] @ corpus.T
        rows = torch.arange(len(scores), device=device)
        scores[rows, first + rows] = -torch.inf
        values, indices = torch.topk(scores, k, dim=1)  # ties: torch's order, not the smaller row
        yield NeighbourBlock(first, indices.cpu().numpy(), values.cpu().numpy())


def recall_at_k(exact: np.ndarray, approximate: np.ndarray) -> float:
    """Mean share of each row's exact neighbours that the approximate answer found (rows aligned)."""
    hits = sum(len(set(e) & set(a)) for e, a in zip(exact.tolist(), approximate.tolist(), strict=True))
    return hits / exact.size if exact.size else 1.0


def best_device(requested: str = "auto") -> str:
    """`auto`: cuda when torch is installed and sees a GPU, else cpu (numpy); anything else is taken as given."""
    if requested != "auto":
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
