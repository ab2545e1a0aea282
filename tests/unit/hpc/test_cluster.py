"""Connection settings: what an Airflow `ssh` Connection may hold, and the message a user gets when it is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corpusbridge.hpc.cluster import ClusterSettings, ClusterSettingsError

SANDBOX_CONN = {
    "conn_type": "ssh",
    "host": "127.0.0.1",
    "port": 2222,
    "login": "root",
    "extra": {
        "key_file": "/tmp/corpusbridge-sandbox/ssh/id_ed25519",
        "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICQaW9C/AgZi/1uJmrVJ9HjodHNWzxQzkjBL40X81fln",
        "known_hosts": "/tmp/corpusbridge-sandbox/ssh/known_hosts",
        "scratch_root": "/tmp/corpusbridge-sandbox/scratch",
        "partition": "debug",
        "slurm_conf": "/tmp/corpusbridge-sandbox/etc/slurm.conf",
    },
}


def _with(**extra: Any) -> dict[str, Any]:
    return {**SANDBOX_CONN, "extra": {**SANDBOX_CONN["extra"], **extra}}


def test_the_sandbox_connection_parses() -> None:
    s = ClusterSettings.from_mapping(SANDBOX_CONN)
    assert (s.host, s.port, s.login, s.partition) == ("127.0.0.1", 2222, "root", "debug")
    assert s.key_file == Path("/tmp/corpusbridge-sandbox/ssh/id_ed25519")
    assert s.strict_host_key_checking is True
    assert s.env == {"SLURM_CONF": "/tmp/corpusbridge-sandbox/etc/slurm.conf"}
    assert s.scratch_root == "/tmp/corpusbridge-sandbox/scratch"


def test_extra_may_be_a_json_string_as_airflow_stores_it() -> None:
    conn = {**SANDBOX_CONN, "extra": json.dumps(SANDBOX_CONN["extra"]), "port": "2222"}
    assert ClusterSettings.from_mapping(conn) == ClusterSettings.from_mapping(SANDBOX_CONN)


def test_defaults_for_a_minimal_connection() -> None:
    s = ClusterSettings.from_mapping({"host": "login.hpc.example", "extra": {"scratch_root": "/scratch/me"}})
    assert (s.port, s.login, s.key_file, s.default_sbatch_options, s.env) == (22, None, None, {}, {})


def test_sbatch_options_are_normalised_to_long_option_names() -> None:
    s = ClusterSettings.from_mapping(_with(default_sbatch_options={"--time": "01:00:00", "cpus_per_task": 4}))
    assert s.default_sbatch_options == {"time": "01:00:00", "cpus-per-task": "4"}
    s = ClusterSettings.from_mapping(_with(default_sbatch_options='{"mem": "4G"}'))
    assert s.default_sbatch_options == {"mem": "4G"}


@pytest.mark.parametrize("extra", [{"no_host_key_check": "true"}, {"strict_host_key_checking": False}])
def test_switching_host_key_checks_off_is_refused_and_names_the_opt_in(extra: dict[str, Any]) -> None:
    with pytest.raises(ClusterSettingsError, match=r"set extra\.accept_unknown_host_key_insecure: true"):
        ClusterSettings.from_mapping(_with(**extra))


def test_host_key_checks_stay_on_unless_the_insecure_opt_in_is_given() -> None:
    assert ClusterSettings.from_mapping(_with(no_host_key_check=False)).strict_host_key_checking is True
    assert ClusterSettings.from_mapping(_with(strict_host_key_checking="yes")).strict_host_key_checking is True
    insecure = _with(accept_unknown_host_key_insecure=True, no_host_key_check=True)
    assert ClusterSettings.from_mapping(insecure).strict_host_key_checking is False


@pytest.mark.parametrize(
    "key",
    [
        "ssh-ed25519 AAAAnotakey",  # not base64 of a key
        "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",  # an RSA blob under an ed25519 label
        "ssh-ed25519 !!!!",
        "ssh-rsa",
    ],
)
def test_a_malformed_pinned_key_is_always_an_error(key: str) -> None:
    for extra in ({}, {"accept_unknown_host_key_insecure": True}):
        with pytest.raises(ClusterSettingsError, match=r"extra\.host_key"):
            ClusterSettings.from_mapping(_with(host_key=key, **extra))


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ({"extra": {"scratch_root": "/s"}}, "host is missing"),
        ({"host": "h"}, "extra.scratch_root is missing"),
        ({**SANDBOX_CONN, "host": "-oProxyCommand=touch /tmp/x"}, "is not a host name"),
        ({**SANDBOX_CONN, "host": "a b"}, "is not a host name"),
        ({**SANDBOX_CONN, "port": "ssh"}, "port 'ssh' is not a number"),
        ({**SANDBOX_CONN, "port": 70000}, "out of range"),
        ({**SANDBOX_CONN, "extra": "{not json"}, "extra is not valid JSON"),
        (_with(scratch="/s"), r"unknown connection extras \['scratch'\]"),
        (_with(host_key="AAAAC3Nza"), "must be '<type> <base64>'"),
        (_with(container_runtime="docker"), "container_runtime 'docker' is not one of"),
        (_with(default_sbatch_options={"time; rm": "1"}), "not an sbatch long option"),
        (_with(default_sbatch_options={"--job": "evil"}), r"'--job' would set --job-name"),
        (_with(default_sbatch_options={"out": "/tmp/x"}), r"'out' would set --output"),
        (_with(strict_host_key_checking="maybe"), "must be true or false"),
        (_with(private_key="-----BEGIN"), "write it to a file"),
        ({**SANDBOX_CONN, "password": "x", "extra": {"scratch_root": "/s"}}, "password logins are not supported"),
        (_with(conn_timeout=0), "conn_timeout must be > 0"),
        (_with(scratch_root="/s/a\\b"), "without backslashes"),
        (_with(scratch_root="scratch"), "must be an absolute path"),
    ],
)
def test_bad_settings_name_the_field(conn: dict[str, Any], message: str) -> None:
    with pytest.raises(ClusterSettingsError, match=message):
        ClusterSettings.from_mapping(conn)


def test_state_policy_extra() -> None:
    from corpusbridge.hpc.states import Phase

    extra = {**SANDBOX_CONN["extra"], "state_policy": '{"PREEMPTED": "wait"}'}
    settings = ClusterSettings.from_mapping({**SANDBOX_CONN, "extra": extra})
    assert settings.state_policy.classify("PREEMPTED").phase is Phase.WAITING
    with pytest.raises(ClusterSettingsError, match=r"extra\.state_policy: 'TIMEOUT' cannot be set"):
        ClusterSettings.from_mapping({**SANDBOX_CONN, "extra": {**extra, "state_policy": {"TIMEOUT": "wait"}}})
