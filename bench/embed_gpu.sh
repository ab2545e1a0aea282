#!/usr/bin/env bash
# The GPU rows of bench/RESULTS.md ("Embeddings"), in one go, on a GPU node whose python3 has torch,
# sentence-transformers, tokenizers, pyarrow, numpy, threadpoolctl, pyahocorasick and the model package:
#     PYTHONPATH=include bash bench/embed_gpu.sh OUT_DIR
# Every runtime is compared with the numpy runtime on the same texts (min cos) in the same run.
set -euo pipefail
out=${1:-.}
threads=$(nproc)
python3 - <<'PY'
import numpy, pyarrow, sentence_transformers, tokenizers, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
print("sentence-transformers", sentence_transformers.__version__, "tokenizers", tokenizers.__version__,
      "pyarrow", pyarrow.__version__, "numpy", numpy.__version__)
PY
bench() { python3 bench/embed.py --device cuda --threads "$threads" --rounds 1 "$@"; }
# Abstracts (256 tokens each): every runtime, then the whole payload with numpy and torch.
bench --docs 2000 --device-docs 20000 --batch-size 256 --program \
  --runtimes numpy,torch,torch-bf16,torch-fp16,sentence-transformers | tee "$out/embed-abstracts.txt"
# Short texts (~35 tokens).
bench --docs 4000 --device-docs 50000 --words 20 --batch-size 256 \
  --runtimes numpy,torch,torch-bf16,sentence-transformers | tee "$out/embed-short.txt"
# Batch size.
for batch in 64 1024; do
  bench --docs 200 --device-docs 20000 --batch-size "$batch" --runtimes numpy,torch,torch-bf16 \
    | tee "$out/embed-batch-$batch.txt"
done
