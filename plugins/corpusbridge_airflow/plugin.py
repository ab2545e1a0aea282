"""The Airflow plugin: what `airflow plugins` lists for corpusbridge.

Operators, sensors and triggers need no plugin (they are plain modules under plugins/); an operator extra link does,
so that the API server can rebuild it from a serialized DAG. Airflow finds this class by scanning its plugins_folder
(the project's plugins/, see airflow.cfg.example).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from corpusbridge_airflow.links import SlurmJobLink


class CorpusbridgePlugin(AirflowPlugin):
    """Registers the SLURM job link (SlurmOperator tasks show it once `operator_extra_links` names it)."""

    name = "corpusbridge"
    operator_extra_links = [SlurmJobLink()]  # noqa: RUF012 (AirflowPlugin's own class attribute)
