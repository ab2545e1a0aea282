"""`python -m corpusbridge.extract ...`: the payload entry point on a cluster node (same as `corpusbridge extract`)."""

from __future__ import annotations

import os
import sys

# numpy is let in, also with --no-embeddings: pyarrow then imports it (~0.07-0.1 s of CPU per process) and the
# concept graph's map runs vectorized. Kept out, the map ran in plain Python at 0.7-1.4x of the whole payload's CPU
# (3.0 s instead of 0.25 s on a 25,000-document exported shard; bench/graph.py, RESULTS "Graphs").
from corpusbridge.extract.command import main

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Exit without interpreter teardown: it would free the loaded automaton node by node (~0.4 s of CPU for 1M terms,
# measured) after every output is already closed, fsynced and renamed.
os._exit(code)
