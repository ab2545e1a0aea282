"""Plain functions the DAG tasks call: they resolve Connections and log progress."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corpusbridge.runs import Progress

log = logging.getLogger(__name__)


def log_progress(progress: Progress) -> None:
    """Every stage's progress callback in a task log: `str(progress)` is the line (done, rate, extra counters)."""
    log.info("%s", progress)
