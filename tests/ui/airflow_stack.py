"""A real Airflow 3 deployment for a test: api-server, scheduler, dag-processor and triggerer on 127.0.0.1.

Every port is picked free at start (other test sessions run on this machine). The scheduler's and triggerer's log
servers are not started (`--skip-serve-logs`: they would bind 0.0.0.0 with no host option); the api-server reads
the task logs from the shared AIRFLOW_HOME instead. Auth is the simple auth manager with a known admin password.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPONENTS = {
    "api-server": ["api-server", "--host", "127.0.0.1"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
HEALTHY = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AirflowStack:
    """Start with `start()`, stop with `stop()`; `api(...)` calls the REST API as admin."""

    home: Path
    sql_alchemy_conn: str
    repo: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _token: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        passwords = self.home / "passwords.json"
        env |= {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.repo / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.repo / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            # Under load (a shared 2-core box) the default 5 s made task runners give up on the API server.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }
        return env | self.extra_env

    def start(self, timeout: float = 150.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        self._airflow("db", "migrate")
        logs = self.home / "component-logs"
        logs.mkdir(exist_ok=True)
        for name, args in COMPONENTS.items():
            extra = ["--port", str(self.port)] if name == "api-server" else []
            out = (logs / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [*self._cli(), *args, *extra], env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.wait_healthy(timeout)

    def _cli(self) -> list[str]:
        return [str(Path(sys.executable).with_name("airflow"))]

    def _airflow(self, *args: str) -> None:
        result = subprocess.run([*self._cli(), *args], env=self.env(), capture_output=True, timeout=300)
        if result.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stderr.decode()[-3000:]}")

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                last = self._get_json("/api/v2/monitor/health", auth=False)
                if all(last.get(part, {}).get("status") == "healthy" for part in HEALTHY):
                    return
            except (OSError, ValueError) as exc:
                last = exc
            time.sleep(1.0)
        raise AssertionError(f"Airflow not healthy after {timeout:.0f}s: {last}\n{self.log_tails()}")

    def _check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow component(s) exited: {dead}\n{self.log_tails()}")

    def log_tails(self, chars: int = 2000) -> str:
        parts = []
        for path in sorted((self.home / "component-logs").glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    @contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """Freeze one component (SIGSTOP to its process group) and resume it on exit, whatever happened.

        For a triggerer that has not picked a new trigger up yet, for as long as the test needs: what a busy one
        does by chance. The other components and the metadata DB go on as usual.
        """
        group = self.procs[name].pid  # start_new_session: the component leads its own process group
        os.killpg(group, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(group, signal.SIGCONT)

    # --- REST ---------------------------------------------------------------------------------------------------

    @property
    def token(self) -> str:
        if self._token is None:
            body = {"username": "admin", "password": self.password}
            self._token = self._request("POST", "/auth/token", body, auth=False)["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return self._request(method, f"/api/v2{path}", body)

    def _get_json(self, path: str, auth: bool = True) -> Any:
        return self._request("GET", path, None, auth=auth)

    def _request(self, method: str, path: str, body: Any, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode()[:2000]}") from None

    def wait_for_dag(self, dag_id: str, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dags = self.api("GET", "/dags?dag_id_pattern=" + urllib.parse.quote(dag_id))["dags"]
            if any(d["dag_id"] == dag_id for d in dags):
                return next(d for d in dags if d["dag_id"] == dag_id)
            time.sleep(1.0)
        errors = self.api("GET", "/importErrors")
        raise AssertionError(f"DAG {dag_id} not parsed after {timeout:.0f}s; import errors: {errors}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240.0) -> dict[str, Any]:
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            run = self.api("GET", path)
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(2.0)
        raise AssertionError(f"{dag_id} run {run_id} still {run.get('state')} after {timeout:.0f}s")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        instances = self.api("GET", path)["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in instances}


# --- databases for a stack --------------------------------------------------------------------------------------


def create_database(server_uri: str, prefix: str) -> str:
    """A new, empty database on the test server (one for Airflow's metadata, one for the corpus); its conninfo."""
    import uuid

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_uri, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(**{**conninfo_to_dict(server_uri), "dbname": name})


def sqlalchemy_url(conninfo: str) -> str:
    """Airflow's `sql_alchemy_conn` for a psycopg conninfo (the embedded server is reached by its socket folder)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(conninfo)
    user = urllib.parse.quote(str(info.get("user") or "postgres"))
    password = f":{urllib.parse.quote(str(info['password']))}" if info.get("password") else ""
    query = {k: info[k] for k in ("host", "port") if info.get(k)}
    return f"postgresql+psycopg://{user}{password}@/{info['dbname']}?{urllib.parse.urlencode(query)}"


def postgres_connection(conninfo: str) -> str:
    """`AIRFLOW_CONN_CORPUSBRIDGE_POSTGRES` for the corpus database."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(conninfo)
    conn = {"conn_type": "postgres", "host": info.get("host"), "port": info.get("port"), "login": info.get("user"),
            "password": info.get("password"), "schema": info["dbname"]}  # fmt: skip
    return json.dumps({k: v for k, v in conn.items() if v})
