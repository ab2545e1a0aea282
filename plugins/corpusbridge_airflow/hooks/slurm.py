"""The `corpusbridge_hpc` Airflow connection, turned into ClusterSettings and a Transport (lazily).

Nothing connects in `__init__`: DAG files build operators at parse time, and a parse must never open an
SSH session.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook
from corpusbridge.hpc.transport import Transport

DEFAULT_CONN_ID = "corpusbridge_hpc"


class SlurmHook(BaseHook):
    """Resolve an `ssh` Connection (host, port, login, key file, host key, extras) for the SLURM layer.

    Extras read: `scratch_root`, `partition`, `account`, `sbatch_options`, `container_runtime`, `key_file`,
    `host_key` / `known_hosts`, and `transport: "local"` for prototype mode on this machine.
    """

    conn_name_attr = "slurm_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "ssh"
    hook_name = "corpusbridge SLURM cluster"

    def __init__(self, slurm_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slurm_conn_id = slurm_conn_id

    @cached_property
    def settings(self):  # -> corpusbridge.hpc.cluster.ClusterSettings
        from corpusbridge.hpc.cluster import ClusterSettings

        conn = self.get_connection(self.slurm_conn_id)
        return ClusterSettings.from_connection(
            conn_id=self.slurm_conn_id,
            host=conn.host,
            port=conn.port,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
        )

    def get_transport(self) -> Transport:
        """A new transport for this cluster; the caller closes it (one ControlMaster per transport)."""
        from corpusbridge.hpc.cluster import transport_for

        return transport_for(self.settings)

    @cached_property
    def transport(self) -> Transport:
        return self.get_transport()

    def close(self) -> None:
        if "transport" in self.__dict__:
            self.__dict__.pop("transport").close()
