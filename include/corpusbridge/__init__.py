"""corpusbridge: the Airflow-free domain library of the hybrid workstation/HPC corpus pipeline.

Everything here runs the same on the workstation and inside the cluster container; it never imports Airflow.
"""

from __future__ import annotations

__version__ = "0.1.0"
