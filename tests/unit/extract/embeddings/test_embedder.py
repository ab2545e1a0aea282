"""The embedding runtime: same vectors as sentence-transformers, whatever the batching, threads or runtime."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from corpusbridge.extract.embeddings.embedder import DEFAULT_MODEL, Embedder, load_embedder

REFERENCE = Path(__file__).resolve().parents[3] / "fixtures" / "embeddings" / "minilm_reference.json"
SHORT_TEXTS = [
    "Lung cancer screening with low-dose CT reduces mortality.",
    "Small cell lung cancer",
    "",
    "Mitochondrial DNA copy number in peripheral blood.",
    "Anti-TNF therapy — Crohn’s disease, ulcerative colitis.",
]


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder()


def _abstract(words: int, seed: int = 0) -> str:
    vocab = [
        "the",
        "of",
        "patients",
        "cells",
        "tumour",
        "expression",
        "increased",
        "cohort",
        "risk",
        "protein",
        "analysis",
        "therapy",
    ]
    rng = np.random.default_rng(seed)
    return " ".join(vocab[i] for i in rng.integers(0, len(vocab), size=words))


def test_vectors_match_sentence_transformers(embedder: Embedder, reference: dict) -> None:
    vectors = embedder.embed(reference["texts"])
    expected = np.asarray(reference["vectors"], dtype=np.float32)
    cosines = (vectors * expected).sum(axis=1)
    assert cosines.min() >= 0.99999, cosines
    np.testing.assert_allclose(vectors, expected, atol=2e-6)


def test_shape_dtype_and_unit_norm(embedder: Embedder) -> None:
    vectors = embedder.embed(SHORT_TEXTS)
    assert vectors.shape == (len(SHORT_TEXTS), 384) and vectors.dtype == np.float32
    assert embedder.dimension == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert np.isfinite(vectors).all()


def test_empty_list_gives_empty_matrix(embedder: Embedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


def test_deterministic_across_calls_and_loads(embedder: Embedder) -> None:
    first = embedder.embed(SHORT_TEXTS)
    assert np.array_equal(first, embedder.embed(SHORT_TEXTS))
    assert np.array_equal(first, load_embedder().embed(SHORT_TEXTS))


def test_vector_independent_of_batch_size_threads_and_neighbours(embedder: Embedder) -> None:
    # The payload's output must be byte-identical across reruns and SLURM core counts, so this is exact equality
    # (the interface promises 1e-6; the numpy runtime encodes each text on its own and gives the same bits).
    texts = [*SHORT_TEXTS, _abstract(300, seed=1), _abstract(40, seed=2)]
    baseline = embedder.embed(texts)
    for batch_size, threads in [(1, 1), (2, 2), (3, 1), (64, 2)]:
        vectors = load_embedder(batch_size=batch_size, threads=threads).embed(texts)
        assert np.array_equal(vectors, baseline), f"batch_size={batch_size} threads={threads}"
    assert np.array_equal(np.stack([embedder.embed([text])[0] for text in texts]), baseline)
    assert np.array_equal(embedder.embed(texts[::-1])[::-1], baseline)


def test_truncates_at_256_tokens_not_at_the_tokenizer_files_128(embedder: Embedder) -> None:
    long_text = _abstract(300)  # one word piece per word, plus [CLS]/[SEP]
    head_150, head_200, longer = (" ".join(long_text.split()[:n]) for n in (150, 200, 400))
    vectors = embedder.embed([head_150, head_200, long_text, long_text + " " + _abstract(100, seed=3), longer])
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4), "tokens past 128 must still count"
    np.testing.assert_allclose(vectors[2], vectors[3], atol=1e-6)  # past 256 nothing counts


def test_provenance_fields(embedder: Embedder) -> None:
    assert embedder.model_name == DEFAULT_MODEL
    weights = (embedder.model_dir / "model.safetensors").read_bytes()
    assert embedder.model_hash == hashlib.sha256(weights).hexdigest()
    assert load_embedder(f"sentence-transformers/{DEFAULT_MODEL}").model_name == DEFAULT_MODEL


def test_bad_input_is_an_error_not_a_skip(embedder: Embedder) -> None:
    with pytest.raises(TypeError, match="item 1 is NoneType"):
        embedder.embed(["fine", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single str"):
        embedder.embed("a text, not a list")
    with pytest.raises(ValueError, match="not available offline"):
        load_embedder("bert-base-uncased")
    with pytest.raises(ValueError, match="runtime 'onnx' is unknown"):
        load_embedder(runtime="onnx")  # type: ignore[arg-type]


def test_torch_runtime_gives_the_same_vectors(embedder: Embedder, reference: dict) -> None:
    pytest.importorskip("torch", reason="torch is not installed (optional GPU runtime; CI stays torch-free)")
    texts = [*reference["texts"], *SHORT_TEXTS, _abstract(300, seed=4)]
    torch_embedder = load_embedder(runtime="torch", batch_size=4)
    assert torch_embedder.runtime.startswith("torch:")
    assert torch_embedder.model_hash == embedder.model_hash
    cosines = (torch_embedder.embed(texts) * embedder.embed(texts)).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines


def test_torch_half_precision_is_close_and_says_so(embedder: Embedder, reference: dict) -> None:
    pytest.importorskip("torch", reason="torch is not installed (optional GPU runtime; CI stays torch-free)")
    texts = [*reference["texts"], *SHORT_TEXTS]
    half = load_embedder(runtime="torch", dtype="bfloat16", batch_size=4)
    assert half.runtime.endswith(":bfloat16")
    vectors = half.embed(texts)
    assert vectors.dtype == np.float32
    assert (vectors * embedder.embed(texts)).sum(axis=1).min() >= 0.999  # 0.99993 measured, CPU and H100
    with pytest.raises(ValueError, match="dtype 'int8'"):
        load_embedder(runtime="torch", dtype="int8")  # type: ignore[arg-type]


def test_a_text_list_longer_than_a_batch_is_embedded_in_order(embedder: Embedder) -> None:
    """Batches are tokenized one ahead on a thread; the order of the vectors must not show it."""
    texts = [f"text number {i} about lung cancer cells" for i in range(11)]
    small = load_embedder(batch_size=3)
    assert np.array_equal(small.embed(texts), np.stack([embedder.embed([t])[0] for t in texts]))
    assert small.embed([]).shape == (0, small.dimension)
