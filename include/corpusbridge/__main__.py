from __future__ import annotations

import sys

from corpusbridge.cli import main

sys.exit(main())
