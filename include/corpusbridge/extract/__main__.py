"""`python -m corpusbridge.extract ...`: the payload entry point on a cluster node (same as `corpusbridge extract`)."""

from __future__ import annotations

import sys

from corpusbridge.cli.extract import main

sys.exit(main())
