"""The `corpusbridge_slurm` connection type: a SLURM cluster reached over SSH, with a form for its fields.

The form itself is declared in provider.py (read by Airflow >= 3.2 without importing this module); the two
classmethods serve the same fields to older Airflow versions, whose UI asks the hook. The connection's extras are
exactly what ClusterSettings reads, so SlurmHook works on a connection of this type unchanged.
"""

from __future__ import annotations

from typing import Any

from corpusbridge_airflow.hooks.slurm import DEFAULT_CONN_ID, SlurmHook
from corpusbridge_airflow.provider import CLUSTER_FIELDS, CONN_TYPE, ui_field_behaviour


class SlurmClusterHook(SlurmHook):
    """SlurmHook for connections of type `corpusbridge_slurm` (what the Airflow connection form creates)."""

    conn_type = CONN_TYPE
    hook_name = "corpusbridge SLURM cluster"

    def __init__(self, slurm_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(slurm_conn_id, **kwargs)

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """String fields for the cluster extras, for Airflow 2 (wtforms); Airflow 3 reads provider.py's conn-fields."""
        from wtforms import StringField

        return {
            name: StringField(label, description=description)
            for name, (label, _placeholder, description) in CLUSTER_FIELDS.items()
        }

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The same hidden fields, labels and placeholders as provider.py, in the hook's snake_case form."""
        behaviour = ui_field_behaviour()
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }
