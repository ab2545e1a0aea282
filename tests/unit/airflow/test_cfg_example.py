"""airflow.cfg.example: the deployment settings that break a stack when they disagree (API port, the URL task
runners report to, the UI's base URL) agree with each other, and the SLURM job link's template is there."""

from __future__ import annotations

import configparser
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[3]


def _example() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "airflow.cfg.example", encoding="utf-8")
    return parser


def test_the_api_port_base_url_and_execution_api_url_agree() -> None:
    cfg = _example()
    port = cfg.getint("api", "port")
    execution = urlsplit(cfg.get("core", "execution_api_server_url"))
    base = urlsplit(cfg.get("api", "base_url"))
    assert (execution.hostname, execution.port, execution.path) == (cfg.get("api", "host"), port, "/execution/")
    assert (base.hostname, base.port) == (cfg.get("api", "host"), port)


def test_the_slurm_job_link_template_names_the_job_id() -> None:
    from corpusbridge_airflow.links import job_url

    template = _example().get("corpusbridge", "slurm_job_url")
    assert job_url(template, ["4711"]).endswith("/4711")
