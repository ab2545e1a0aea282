"""Document vectors: the `Embedder` and its options (embedder.py: all-MiniLM-L6-v2, offline) over one of two
runtimes of the same encoder, numpy for CPU nodes (minilm.py, the default: no torch in the container) and torch for
GPU nodes (minilm_torch.py, optional).

Imported only when vectors are asked for: the concepts-only payload never loads this room (nor numpy).
"""
