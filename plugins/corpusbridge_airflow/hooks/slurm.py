"""The `corpusbridge_hpc` Airflow connection, turned into ClusterSettings and a Transport (lazily).

Nothing connects in `__init__`: DAG files build operators at parse time, and a parse must never open an
SSH session.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from corpusbridge.hpc.cluster import ClusterSettings
from corpusbridge.hpc.transport import Transport

DEFAULT_CONN_ID = "corpusbridge_hpc"


class SlurmHook(BaseHook):
    """Resolve an `ssh` Connection (host, port, login, key file, host key, extras) for the SLURM layer.

    Extras read (see corpusbridge.hpc.cluster): `scratch_root`, `partition`, `account`,
    `default_sbatch_options`, `container_runtime`, `key_file`, `host_key` / `known_hosts` (host keys are always
    checked: `no_host_key_check: true` is refused; `accept_unknown_host_key_insecure: true` accepts an unknown key
    and logs a warning on every connection), `slurm_conf`,
    `state_policy` (what site-dependent job states mean here: `{"PREEMPTED": "wait"}` where preempted jobs are
    requeued, `{"SPECIAL_EXIT": "fail"}` where held jobs are never released; see corpusbridge.hpc.states).
    """

    conn_name_attr = "slurm_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "ssh"
    hook_name = "corpusbridge SLURM cluster"

    def __init__(self, slurm_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slurm_conn_id = slurm_conn_id

    @cached_property
    def settings(self) -> ClusterSettings:
        """Validated settings; a bad field fails here with a message naming it."""
        conn = self.get_connection(self.slurm_conn_id)
        return ClusterSettings.from_mapping(
            {
                "conn_type": conn.conn_type,
                "host": conn.host,
                "port": conn.port,
                "login": conn.login,
                "password": conn.password,
                "extra": conn.extra_dejson,
            }
        )

    def get_transport(self) -> Transport:
        """A new OpenSSH transport. It rides the ControlMaster every process shares for this cluster (one login),
        so closing it closes nothing; the master ends when idle (`ControlPersist`)."""
        from corpusbridge.hpc.openssh import OpenSSHTransport

        return OpenSSHTransport(self.settings)

    @cached_property
    def transport(self) -> Transport:
        return self.get_transport()

    def close(self) -> None:
        if "transport" in self.__dict__:
            self.__dict__.pop("transport").close()
