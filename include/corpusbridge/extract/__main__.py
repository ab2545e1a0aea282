"""`python -m corpusbridge.extract ...`: the payload entry point on a cluster node (same as `corpusbridge extract`)."""

from __future__ import annotations

import os
import sys

_ARGV = sys.argv[1:]
# spaCy (`--sentences spacy`) needs numpy; a path that happens to be named "spacy" only keeps numpy importable.
_SPACY = any(arg == "spacy" or arg.endswith("=spacy") for arg in _ARGV)
if "--no-embeddings" in _ARGV and not _SPACY and "numpy" not in sys.modules:
    # pyarrow imports numpy whenever it can (~0.2 s of CPU per process, measured: as much as matching 10 MB with a
    # 1k-term dictionary) and works without it; nothing on the concepts-only path uses numpy. Only here, in a
    # process of its own: library callers keep numpy.
    sys.modules["numpy"] = None  # type: ignore[assignment]

from corpusbridge.extract.command import main  # noqa: E402 (after the numpy decision above)

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Exit without interpreter teardown: it would free the loaded automaton node by node (~0.4 s of CPU for 1M terms,
# measured) after every output is already closed, fsynced and renamed.
os._exit(code)
