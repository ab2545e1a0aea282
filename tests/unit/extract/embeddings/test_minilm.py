"""The numpy encoder's parts: the safetensors reader and the GELU that numpy has no ufunc for."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from corpusbridge.extract.embeddings.minilm import gelu_inplace, read_safetensors


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype_names: dict[str, str]) -> None:
    header, blobs, offset = {"__metadata__": {"format": "np"}}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        span = [offset, offset + len(raw)]
        header[name] = {"dtype": dtype_names[name], "shape": list(array.shape), "data_offsets": span}
        blobs.append(raw)
        offset += len(raw)
    encoded = json.dumps(header).encode()
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + b"".join(blobs))


def test_safetensors_round_trip(tmp_path: Path) -> None:
    weights = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    ids = np.array([[0, 1, 2]], dtype=np.int64)
    path = tmp_path / "t.safetensors"
    _write_safetensors(path, {"w": weights, "ids": ids}, {"w": "F32", "ids": "I64"})
    loaded = read_safetensors(path)
    assert set(loaded) == {"w", "ids"}
    np.testing.assert_array_equal(loaded["w"], weights)
    np.testing.assert_array_equal(loaded["ids"], ids)


def test_safetensors_unknown_dtype_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bf16.safetensors"
    _write_safetensors(path, {"w": np.zeros(2, dtype=np.uint16)}, {"w": "BF16"})
    with pytest.raises(ValueError, match="tensor w has dtype BF16"):
        read_safetensors(path)


def test_gelu_is_the_exact_erf_form() -> None:
    xs = np.linspace(-10, 10, 20001, dtype=np.float32)
    exact = np.array([0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs.astype(np.float64)])
    got = gelu_inplace(xs.copy())
    # |error| stays at float32 round-off; the tanh approximation would be off by up to 5e-4.
    np.testing.assert_allclose(got, exact, atol=3e-6, rtol=1e-6)
