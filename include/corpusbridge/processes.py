"""Worker processes that behave the same inside an Airflow task and outside it."""

from __future__ import annotations

import signal


def reset_inherited_signals() -> None:
    """Pool initializer: restore default SIGTERM handling in a forked worker.

    Airflow's task runner installs a SIGTERM handler that returns without doing anything in any process other than
    the task's own. A forked pool worker inherits it, so `Pool.terminate()` (which SIGTERMs its workers, then joins
    them) would wait forever, and a killed task would leave its workers running.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
