"""How to reach a cluster: validated settings read from an Airflow-`ssh`-Connection-shaped mapping.

The library never sees Airflow: the plugin turns the Connection into a plain dict (`conn_type`, `host`, `port`,
`login`, `password`, `extra`) and calls `ClusterSettings.from_mapping`, which is also what tests and the CLI use
with the JSON that `scripts/hpc-sandbox.sh up` prints.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpusbridge.hpc.commands import reserved_option
from corpusbridge.hpc.states import DEFAULT_POLICY, StatePolicy, StatePolicyError

CONTAINER_RUNTIMES = ("apptainer", "singularity")

# Extras the Airflow ssh provider defines that only matter to its paramiko client: accepted and not used.
_PARAMIKO_ONLY_EXTRAS = frozenset(
    {
        "compress",
        "look_for_keys",
        "allow_host_key_change",
        "disabled_algorithms",
        "auth_timeout",
        "banner_timeout",
        "keepalive_interval",
    }
)
_OWN_EXTRAS = frozenset(
    {
        "key_file",
        "known_hosts",
        "host_key",
        "no_host_key_check",
        "accept_unknown_host_key_insecure",
        "strict_host_key_checking",
        "scratch_root",
        "partition",
        "account",
        "default_sbatch_options",
        "sbatch_options",
        "container_runtime",
        "slurm_conf",
        "conn_timeout",
        "cmd_timeout",
        "ciphers",
        "control_persist",
        "state_policy",
    }
)
_HOST = re.compile(r"^[A-Za-z0-9_.:%-]+$")
_SBATCH_OPTION = re.compile(r"^[a-z][a-z0-9-]*$")


class ClusterSettingsError(ValueError):
    """The connection settings are unusable; the message names the field and what to put there."""


@dataclass(frozen=True)
class ClusterSettings:
    """Everything a transport and the SLURM layer need to know about one cluster."""

    host: str
    scratch_root: str
    port: int = 22
    login: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    host_key: str | None = None
    strict_host_key_checking: bool = True
    partition: str | None = None
    account: str | None = None
    default_sbatch_options: dict[str, str] = field(default_factory=dict)
    container_runtime: str | None = None
    slurm_conf: str | None = None
    connect_timeout: float = 10.0
    command_timeout: float | None = None
    ciphers: str | None = None
    control_persist: int = 300
    # What site-dependent job states mean here, e.g. {"PREEMPTED": "wait"} where PreemptMode=REQUEUE.
    state_policy: StatePolicy = DEFAULT_POLICY

    @property
    def env(self) -> dict[str, str]:
        """Environment the cluster's commands need (SLURM_CONF when the cluster has no default config)."""
        return {"SLURM_CONF": self.slurm_conf} if self.slurm_conf else {}

    @property
    def destination(self) -> str:
        return f"{self.login}@{self.host}:{self.port}" if self.login else f"{self.host}:{self.port}"

    def sbatch_defaults(self) -> dict[str, object]:
        """The connection's default sbatch options, partition and account; a caller's own options override them."""
        options: dict[str, object] = dict(self.default_sbatch_options)
        if self.partition:
            options["partition"] = self.partition
        if self.account:
            options["account"] = self.account
        return options

    @classmethod
    def from_mapping(cls, conn: Mapping[str, Any]) -> ClusterSettings:
        """Validate a Connection-like mapping; raise ClusterSettingsError naming the bad field."""
        extra = _extras(conn.get("extra"))
        _reject_unknown(extra)
        if conn.get("password") and not extra.get("key_file"):
            raise ClusterSettingsError(
                "password logins are not supported (ssh runs in BatchMode): set extra.key_file to a private key"
            )
        if extra.get("private_key"):
            raise ClusterSettingsError(
                "extra.private_key (inline key) is not supported: write it to a file "
                "(mode 0600) and set extra.key_file to its path"
            )
        return cls(
            host=_host(conn),
            port=_port(conn.get("port")),
            login=_optional_str(conn.get("login"), "login"),
            scratch_root=_scratch_root(extra),
            key_file=_optional_path(extra.get("key_file"), "extra.key_file"),
            known_hosts=_optional_path(extra.get("known_hosts"), "extra.known_hosts"),
            host_key=_host_key(extra.get("host_key")),
            strict_host_key_checking=_strict(extra),
            partition=_optional_str(extra.get("partition"), "extra.partition"),
            account=_optional_str(extra.get("account"), "extra.account"),
            default_sbatch_options=_sbatch_options(extra.get("default_sbatch_options", extra.get("sbatch_options"))),
            container_runtime=_container_runtime(extra.get("container_runtime")),
            slurm_conf=_optional_str(extra.get("slurm_conf"), "extra.slurm_conf"),
            connect_timeout=_positive_float(extra.get("conn_timeout", 10), "extra.conn_timeout"),
            command_timeout=_optional_positive_float(extra.get("cmd_timeout"), "extra.cmd_timeout"),
            ciphers=_optional_str(extra.get("ciphers"), "extra.ciphers"),
            control_persist=int(_positive_float(extra.get("control_persist", 300), "extra.control_persist")),
            state_policy=_state_policy(extra.get("state_policy")),
        )


def _extras(raw: Any) -> dict[str, Any]:
    return _json_object(raw, "extra", '{"scratch_root": "/scratch/me"}')


def _json_object(value: Any, label: str, example: str) -> dict[str, Any]:
    """A mapping given as a dict or as JSON text (Airflow stores extras as text); empty when absent."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ClusterSettingsError(f"{label} is not valid JSON ({exc}): give an object like {example}") from exc
    if not isinstance(value, Mapping):
        raise ClusterSettingsError(f"{label} must be a JSON object like {example}, got {type(value).__name__}")
    return dict(value)


def _reject_unknown(extra: Mapping[str, Any]) -> None:
    unknown = sorted(set(extra) - _OWN_EXTRAS - _PARAMIKO_ONLY_EXTRAS - {"private_key", "private_key_passphrase"})
    if unknown:
        raise ClusterSettingsError(
            f"unknown connection extras {unknown}: remove them or use one of {sorted(_OWN_EXTRAS)}"
        )


def _required_str(conn: Mapping[str, Any], key: str, label: str | None = None, hint: str = "") -> str:
    value = conn.get(key)
    if not isinstance(value, str) or not value.strip():
        what = f" ({hint})" if hint else ""
        raise ClusterSettingsError(f"{label or key} is missing or empty: set it{what}")
    return value.strip()


def _scratch_root(extra: Mapping[str, Any]) -> str:
    """An absolute folder; a backslash or control character would change how sbatch names the job's logs."""
    root = _required_str(
        extra,
        "scratch_root",
        "extra.scratch_root",
        hint="a directory on the cluster's shared filesystem where per-run scratch dirs are created",
    )
    if not root.startswith("/") or "\\" in root or any(ord(ch) < 32 for ch in root):
        raise ClusterSettingsError(
            f"extra.scratch_root {root!r} must be an absolute path without backslashes or control characters "
            "(e.g. /scratch/me/corpusbridge)"
        )
    return root


def _host(conn: Mapping[str, Any]) -> str:
    host = _required_str(conn, "host")
    # ssh would read a host starting with "-" as an option (e.g. -oProxyCommand=...): only name characters pass.
    if host.startswith("-") or not _HOST.match(host):
        raise ClusterSettingsError(f"host {host!r} is not a host name or IP address: give e.g. login.hpc.example")
    return host


def _optional_str(value: Any, label: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ClusterSettingsError(f"{label} must be a string, got {value!r}")
    return value


def _optional_path(value: Any, label: str) -> Path | None:
    text = _optional_str(value, label)
    return Path(text).expanduser() if text else None


def _port(value: Any) -> int:
    if value is None or value == "":
        return 22
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ClusterSettingsError(f"port {value!r} is not a number: give the cluster's SSH port (22)") from None
    if not 1 <= port <= 65535:
        raise ClusterSettingsError(f"port {port} is out of range 1-65535")
    return port


def _as_bool(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "yes", "no", "1", "0"}:
        return value.strip().lower() in {"true", "yes", "1"}
    raise ClusterSettingsError(f"{label} must be true or false, got {value!r}")


INSECURE_OPT_IN = "accept_unknown_host_key_insecure"
# Spellings that, in the Airflow ssh provider or earlier corpusbridge, switched to accepting unknown host keys.
_TOFU_SWITCHES = (("no_host_key_check", True), ("strict_host_key_checking", False))


def _strict(extra: Mapping[str, Any]) -> bool:
    """Host keys are checked unless the user opts out with a setting that says what it does: trust on first use
    lets whoever answers first (a spoofed DNS name, a hijacked address) read every command and file we send."""
    if _as_bool(extra.get(INSECURE_OPT_IN, False), f"extra.{INSECURE_OPT_IN}"):
        return False
    for key, insecure in _TOFU_SWITCHES:
        if key in extra and _as_bool(extra[key], f"extra.{key}") is insecure:
            raise ClusterSettingsError(
                f"extra.{key}={extra[key]!r} would accept an unknown host key (trust on first use) and is refused: "
                "pin the cluster's key in extra.host_key (`ssh-keyscan -t ed25519 HOST` prints it) or "
                f"extra.known_hosts; to accept unknown keys anyway, set extra.{INSECURE_OPT_IN}: true "
                "(every connection then logs a warning)"
            )
    return True


def _host_key(value: Any) -> str | None:
    """A pinned key must be one ssh can use: a line it cannot read would be skipped, silently unpinning the host."""
    text = _optional_str(value, "extra.host_key")
    if text is None:
        return None
    parts = text.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")) or not _key_blob_is(parts[1], parts[0]):
        raise ClusterSettingsError(
            f"extra.host_key {text[:40]!r}... must be '<type> <base64>' as in the server's *.pub host key "
            "(e.g. 'ssh-ed25519 AAAA...'; `ssh-keyscan -t ed25519 HOST` prints it)"
        )
    return f"{parts[0]} {parts[1]}"


def _key_blob_is(blob: str, key_type: str) -> bool:
    """True when `blob` is base64 of an SSH public key whose embedded type name is `key_type` (RFC 4253 6.6)."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return False
    length = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    return len(raw) > 4 + length >= 4 and raw[4 : 4 + length] == key_type.encode()


def _sbatch_options(value: Any) -> dict[str, str]:
    value = _json_object(value, "extra.default_sbatch_options", '{"time": "01:00:00"}')
    options: dict[str, str] = {}
    for key, item in value.items():
        name = str(key).removeprefix("--").replace("_", "-")
        if not _SBATCH_OPTION.match(name):
            raise ClusterSettingsError(f"extra.default_sbatch_options: {key!r} is not an sbatch long option name")
        reserved = reserved_option(name)
        if reserved:
            raise ClusterSettingsError(
                f"extra.default_sbatch_options: {key!r} would set {reserved}, which corpusbridge sets itself "
                "(job naming, logs and re-attachment depend on it); remove it"
            )
        if isinstance(item, dict | list):
            raise ClusterSettingsError(f"extra.default_sbatch_options[{key!r}] must be a string or number")
        options[name] = str(item)
    return options


def _container_runtime(value: Any) -> str | None:
    text = _optional_str(value, "extra.container_runtime")
    if text is not None and text not in CONTAINER_RUNTIMES:
        raise ClusterSettingsError(f"extra.container_runtime {text!r} is not one of {CONTAINER_RUNTIMES}")
    return text


def _positive_float(value: Any, label: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ClusterSettingsError(f"{label} must be a number of seconds, got {value!r}") from None
    if number <= 0:
        raise ClusterSettingsError(f"{label} must be > 0, got {number}")
    return number


def _optional_positive_float(value: Any, label: str) -> float | None:
    return None if value is None or value == "" else _positive_float(value, label)


def _state_policy(value: Any) -> StatePolicy:
    raw = _json_object(value, "extra.state_policy", '{"PREEMPTED": "wait"}')
    try:
        return StatePolicy.from_mapping(raw)
    except StatePolicyError as exc:
        raise ClusterSettingsError(f"extra.state_policy: {str(exc).removeprefix('state policy: ')}") from None
