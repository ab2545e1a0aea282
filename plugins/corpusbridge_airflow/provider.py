"""What this package registers with Airflow as a provider: the SLURM cluster connection type and its form.

Airflow finds `get_provider_info()` through the `apache_airflow_provider` entry point in pyproject.toml. The
connection form is declared here (`conn-fields`, `ui-field-behaviour`), which Airflow >= 3.2 reads without importing
the hook; the hook (hooks/cluster_connection.py) serves the same table to older versions. The field names are the
connection extras that corpusbridge.hpc.cluster.ClusterSettings reads, so a filled-in form is a valid connection.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "corpusbridge_slurm"
HOOK_CLASS = "corpusbridge_airflow.hooks.cluster_connection.SlurmClusterHook"
PACKAGE = "corpusbridge"

# extra name -> (label, placeholder, description). Every value is a string; blanks mean "not set".
CLUSTER_FIELDS: dict[str, tuple[str, str, str]] = {
    "key_file": (
        "Private key file",
        "/home/airflow/.ssh/id_ed25519",
        "Path of the SSH private key on the Airflow workers (mode 0600); password logins are not supported.",
    ),
    "host_key": (
        "Pinned host key",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA...",
        "The cluster's public host key (`ssh-keyscan -t ed25519 HOST`, checked out of band); a changed key stops "
        "every task instead of trusting it.",
    ),
    "scratch_root": (
        "Scratch root",
        "/scratch/$USER/corpusbridge",
        "A directory on the cluster's shared filesystem; each run gets its own folder under it.",
    ),
    "partition": ("Partition", "compute", "sbatch --partition; blank for the cluster's default."),
    "account": ("Account", "proj-1234", "sbatch --account; blank when the cluster needs none."),
    "default_sbatch_options": (
        "Default sbatch options (JSON)",
        '{"time": "01:00:00", "mem": "8G", "cpus-per-task": "4"}',
        "Long sbatch options applied to every job unless a task overrides them.",
    ),
    "container_runtime": (
        "Container runtime",
        "apptainer",
        "apptainer or singularity: the program that runs a task's container= image on the nodes.",
    ),
}


def conn_fields() -> dict[str, Any]:
    """The `conn-fields` block: one string field per cluster extra, with its label and description."""
    return {
        name: {"label": label, "description": description, "schema": {"type": ["string", "null"]}}
        for name, (label, _placeholder, description) in CLUSTER_FIELDS.items()
    }


def ui_field_behaviour() -> dict[str, Any]:
    """Hide what the SLURM layer never reads (schema, password, raw extra); label and prefill the rest."""
    placeholders = {name: placeholder for name, (_label, placeholder, _d) in CLUSTER_FIELDS.items()}
    placeholders |= {"host": "login.cluster.example.org", "port": "22", "login": "your cluster user name"}
    return {
        "hidden-fields": ["schema", "password", "extra"],
        "relabeling": {"host": "Login node", "login": "User"},
        "placeholders": placeholders,
    }


def get_provider_info() -> dict[str, Any]:
    """Provider metadata (Airflow's provider_info schema), read by `airflow providers list` and the UI."""
    return {
        "package-name": PACKAGE,
        "name": "corpusbridge",
        "description": "Scholarly-corpus pipeline: SLURM cluster connection, operators, triggers and sensors.",
        "versions": [_version()],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK_CLASS,
                "hook-name": "corpusbridge SLURM cluster",
                "conn-fields": conn_fields(),
                "ui-field-behaviour": ui_field_behaviour(),
            }
        ],
        "extra-links": ["corpusbridge_airflow.links.SlurmJobLink"],
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "0+unknown"
