"""The Airflow plugin: what `airflow plugins` lists for corpusbridge.

Operators, sensors and triggers need no plugin (they are plain modules under plugins/). The SLURM job link is
registered here so that `airflow plugins` names it; what makes it work is the SlurmOperator's `operator_extra_links`:
Airflow 3.3 serializes a link as its name and XCom key, the worker stores the URL under that key when a try ends, and
the API server reads it back without importing links.py (checked by tests/unit/airflow/test_slurm_job_link.py).
SlurmJobLink sets no `operators` on purpose: a plugin link that names operators replaces the serialized one, and its
`get_link` would then run in the API server, which has no task runtime to read XComs through. Airflow finds this class
by scanning its plugins_folder (the project's plugins/, see airflow.cfg.example).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from corpusbridge_airflow.links import SlurmJobLink


class CorpusbridgePlugin(AirflowPlugin):
    """Registers the SLURM job link (SlurmOperator tasks show it once `operator_extra_links` names it)."""

    name = "corpusbridge"
    operator_extra_links = [SlurmJobLink()]  # noqa: RUF012 (AirflowPlugin's own class attribute)
