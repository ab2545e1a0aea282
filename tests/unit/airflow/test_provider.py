"""What the package registers with Airflow: the provider (connection type + form), the plugin (the SLURM job link).

The CLI checks run the real `airflow` command of this venv in a fresh AIRFLOW_HOME, the way a user sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow

ROOT = Path(__file__).resolve().parents[3]
AIRFLOW = Path(sys.executable).with_name("airflow")


def _airflow(tmp_path: Path, *args: str) -> list[dict]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    proc = subprocess.run([str(AIRFLOW), *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = proc.stdout.find("\n[")  # warnings may precede the JSON on stdout
    return json.loads(proc.stdout[start + 1 :] if start >= 0 else proc.stdout)


def test_provider_info_matches_airflows_schema() -> None:
    import jsonschema
    from airflow import providers_manager

    from corpusbridge_airflow.provider import get_provider_info

    schema = json.loads((Path(providers_manager.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_entry_point_names_get_provider_info() -> None:
    from importlib.metadata import entry_points

    (point,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.dist and ep.dist.name == "corpusbridge"
    ]
    assert point.load()()["connection-types"][0]["connection-type"] == "corpusbridge_slurm"


def test_a_filled_in_form_is_a_valid_cluster_connection() -> None:
    """Every form field is an extra ClusterSettings reads; the form's values make settings as typed."""
    from corpusbridge.hpc.cluster import ClusterSettings
    from corpusbridge_airflow.provider import CLUSTER_FIELDS, ui_field_behaviour

    form = {
        "key_file": "/home/airflow/.ssh/id_ed25519",
        "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBJpi0J6bG1HqvQk5q3ov1ov3tf3zB3Ek4QfDd3bL9A",
        "scratch_root": "/scratch/cb",
        "partition": "compute",
        "account": "proj-1",
        "default_sbatch_options": '{"time": "01:00:00", "mem": "8G"}',
        "container_runtime": "apptainer",
    }
    assert set(form) == set(CLUSTER_FIELDS)
    conn = {"conn_type": "corpusbridge_slurm", "host": "login.example.org", "port": 22, "login": "u", "extra": form}
    settings = ClusterSettings.from_mapping(conn)
    assert (settings.scratch_root, settings.partition, settings.account) == ("/scratch/cb", "compute", "proj-1")
    assert settings.default_sbatch_options == {"time": "01:00:00", "mem": "8G"}
    assert settings.container_runtime == "apptainer"
    assert set(CLUSTER_FIELDS) <= set(ui_field_behaviour()["placeholders"])


def test_the_hook_serves_the_same_form_to_older_airflow() -> None:
    from corpusbridge_airflow.hooks.cluster_connection import SlurmClusterHook
    from corpusbridge_airflow.provider import CLUSTER_FIELDS

    assert SlurmClusterHook.conn_type == "corpusbridge_slurm"
    assert SlurmClusterHook.get_ui_field_behaviour()["hidden_fields"] == ["schema", "password", "extra"]
    pytest.importorskip("wtforms", reason="Airflow 3 has no wtforms; its UI reads provider.py's conn-fields instead")
    assert set(SlurmClusterHook.get_connection_form_widgets()) == set(CLUSTER_FIELDS)


def test_the_job_link_fills_the_template_or_stays_empty() -> None:
    from corpusbridge_airflow.links import job_url

    template = "https://ood.example.org/activejobs?jobid={job_id}"
    assert job_url(template, ["4711", "4712"]) == "https://ood.example.org/activejobs?jobid=4711"
    assert job_url(template, []) == ""
    assert job_url(None, ["4711"]) == ""


def test_airflow_providers_list_shows_corpusbridge(tmp_path: Path) -> None:
    listed = [p for p in _airflow(tmp_path, "providers", "list") if p["package_name"] == "corpusbridge"]
    assert len(listed) == 1


def test_airflows_providers_manager_offers_the_cluster_form() -> None:
    """What the UI's connection form is built from (`airflow providers hooks/widgets` print the same)."""
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["corpusbridge_slurm"]
    assert hook is not None
    assert hook.hook_class_name == "corpusbridge_airflow.hooks.cluster_connection.SlurmClusterHook"
    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert widgets["extra__corpusbridge_slurm__scratch_root"].field["schema"]["title"] == "Scratch root"
    behaviour = manager.field_behaviours["corpusbridge_slurm"]
    assert behaviour["relabeling"]["host"] == "Login node"
    assert "/scratch/" in behaviour["placeholders"]["extra__corpusbridge_slurm__scratch_root"]


def test_airflow_plugins_lists_the_plugin_and_its_link(tmp_path: Path) -> None:
    (plugin,) = [p for p in _airflow(tmp_path, "plugins") if p["name"] == "corpusbridge"]
    assert "SlurmJobLink" in plugin["operator_extra_links"][0]
    assert plugin["source"].endswith("corpusbridge_airflow/plugin.py")
