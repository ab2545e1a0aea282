"""The same MiniLM encoder on torch, for GPU nodes: padded batches, fused attention, the same weights file.

Optional: torch is not a dependency of the package (the CUDA wheel is ~5 GB). A test checks that its vectors
equal the numpy runtime's (cosine >= 0.9999), so both can feed one index.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from corpusbridge.extract.embeddings.minilm import LAYER_NORM_EPS, BertConfig, read_safetensors

if TYPE_CHECKING:
    from torch import Tensor

TorchDtype = Literal["float32", "bfloat16", "float16"]
# float32 gives the numpy runtime's vectors (cos >= 0.9999, tested); the half types trade that for tensor-core speed
# on GPUs and must never share an index with float32 vectors unless the bench's agreement figures say it is fine.
TORCH_DTYPES: tuple[str, ...] = get_args(TorchDtype)


class TorchMiniLM:
    """BERT encoder + mean pooling + L2 norm in torch; `encode_batch` pads each batch to its longest text."""

    def __init__(
        self, model_dir: Path, *, device: str | None = None, threads: int = 1, dtype: TorchDtype = "float32"
    ) -> None:
        try:
            import torch
        except ImportError as exc:
            from corpusbridge.extract.embeddings.embedder import EmbeddingError

            raise EmbeddingError("the 'torch' embedding runtime needs torch installed; use runtime='numpy'") from exc
        self._torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cpu":
            torch.set_num_threads(threads)
        self.config = BertConfig.from_file(model_dir / "config.json")
        if dtype not in TORCH_DTYPES:
            raise ValueError(f"dtype {dtype!r} is not one of {TORCH_DTYPES}")
        tensors = read_safetensors(model_dir / "model.safetensors")
        self._w = {
            name: torch.from_numpy(np.array(array)).to(self.device, getattr(torch, dtype))
            for name, array in tensors.items()
            if array.dtype == np.float32
        }

    @property
    def dimension(self) -> int:
        return self.config.hidden_size

    def encode_batch(self, ids: list[np.ndarray]) -> np.ndarray:
        torch = self._torch
        longest = max(len(seq) for seq in ids)
        padded = np.zeros((len(ids), longest), dtype=np.int64)
        for row, seq in enumerate(ids):
            padded[row, : len(seq)] = seq
        with torch.inference_mode():
            tokens = torch.from_numpy(padded).to(self.device)
            mask = tokens != 0  # [PAD] is id 0 and never occurs inside a WordPiece sequence
            hidden = self._forward(tokens, mask)
            hidden = hidden.float()  # pool and normalize in float32 whatever the encoder ran in
            weights = mask.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).cpu().numpy()

    def _forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        f = self._torch.nn.functional
        w = self._w
        seq = tokens.shape[1]
        x = w["embeddings.word_embeddings.weight"][tokens] + w["embeddings.position_embeddings.weight"][:seq]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = self._norm(x, "embeddings.LayerNorm")
        attn_mask = mask[:, None, None, :]
        for i in range(self.config.num_layers):
            p = f"encoder.layer.{i}."
            x = self._norm(self._attention(x, attn_mask, p) + x, p + "attention.output.LayerNorm")
            h = f.gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def _attention(self, x: Tensor, attn_mask: Tensor, prefix: str) -> Tensor:
        batch, seq, hidden = x.shape
        heads = self.config.num_heads

        def split(name: str) -> Tensor:
            projected = self._linear(x, f"{prefix}attention.self.{name}")
            return projected.view(batch, seq, heads, hidden // heads).transpose(1, 2)

        context = self._torch.nn.functional.scaled_dot_product_attention(
            split("query"), split("key"), split("value"), attn_mask=attn_mask
        )
        return self._linear(context.transpose(1, 2).reshape(batch, seq, hidden), prefix + "attention.output.dense")

    def _linear(self, x: Tensor, name: str) -> Tensor:
        return self._torch.nn.functional.linear(x, self._w[name + ".weight"], self._w[name + ".bias"])

    def _norm(self, x: Tensor, name: str) -> Tensor:
        return self._torch.nn.functional.layer_norm(
            x, (x.shape[-1],), self._w[name + ".weight"], self._w[name + ".bias"], eps=LAYER_NORM_EPS
        )
