"""Transport over the system OpenSSH client, with one shared ControlMaster connection per cluster.

Why the system client: it honours the user's keys and agent, speaks every cipher the cluster offers, and its
ControlMaster lets every task, poll and file transfer of one machine share a single authenticated TCP connection
(`ControlPath` is derived from host, port and user with `%C`, so separate processes find the same master).
Files travel over that connection as streams: one file as `cat`, many as ONE tar stream (`put_many`/`get_many`,
no per-file ssh start); measured against scp and rsync in bench/staging.py. Remote paths are always shell-quoted
arguments, never scp/sftp path strings (which glob-expand).

The remote login shell must be POSIX-like (sh, bash, zsh): commands reach it as one `shlex.join`ed string.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from corpusbridge.hpc.cluster import ClusterSettings
from corpusbridge.hpc.tarstream import StreamBroken, TarWriter, untar_in_order
from corpusbridge.hpc.transport import (
    POSIX_SHA256_FUNCTION,
    CommandResult,
    RemoteStat,
    TransportError,
    TransportTimeout,
)

log = logging.getLogger(__name__)

# Exit status a helper script uses for "no such path"; anything but 255, which ssh keeps for its own failures.
_MISSING = 44
_SSH_FAILED = 255
_DEFAULT_CIPHERS = "^aes128-gcm@openssh.com"  # ~25 % faster than chacha20 here (slurm-ssh-sandbox.md, section 7)
_SSH_ERROR = re.compile(
    r"^(ssh: |Host key verification failed|.*Permission denied \(|Connection (closed|reset|timed out)|"
    r"Connection to .* closed|client_loop: |mux_client_|Control socket connect|kex_exchange_identification|"
    r"Bad owner or permissions|no such identity)",
    re.MULTILINE,
)
_BRACKET = re.compile(r"[!^]?[A-Za-z0-9_.,+-]+")
# Every remote command runs under this umask: shards carry full text, and scratch is often shared by every user of
# the cluster. sbatch passes the submitting shell's umask to the job (SLURM_UMASK), so results are private too.
_PRIVATE = "umask 077; "

_PUT = (
    'set -e; d=$(dirname -- "$1"); mkdir -p -- "$d"; t="$d/.cb-part-$2"; trap \'rm -f -- "$t"\' EXIT; '
    'cat > "$t"; mv -f -- "$t" "$1"'
)
_GET = f'[ -f "$1" ] || exit {_MISSING}; exec cat -- "$1"'
_SHA256 = f'{POSIX_SHA256_FUNCTION}; [ -f "$1" ] || exit {_MISSING}; x=$(h "$1"); echo "${{x:?hash failed}}"'
# tar reads its archive in records of 20 blocks (10 KiB) by default: 100 000 reads and as many wake-ups of sshd per
# GiB. Records of 2048 blocks (1 MiB), with -B to accept the short reads a pipe gives, took a verified 1 GiB
# stage_in from 5.1 s to 3.4 s (medians) on two shared cores (bench/RESULTS.md, "Staging").
_TAR_BLOCKING = 2048
# Bulk upload: a tar stream of members named 0..n-1 is unpacked into a hidden folder beside the targets; each member
# is renamed onto its target (the next argument, so any characters are safe) and hashed from disk as soon as tar
# names the member after it, i.e. while the rest of the stream still arrives. A short answer means a failure.
_PUT_MANY = f"""{POSIX_SHA256_FUNCTION}
set -e; t="$1/.cb-part-$2"; shift 2; mkdir -p -- "$t"; trap 'rm -rf -- "$t"' EXIT
done1() {{ mkdir -p -- "$(dirname -- "$1")"; mv -f -- "$t/$2" "$1"; x=$(h "$1"); echo "${{x:-!}}"; }}
{{ tar -x -v -B -b {_TAR_BLOCKING} --no-same-owner -f - -C "$t" || echo /tar-failed; }} | {{
  prev=
  while IFS= read -r m; do
    [ "$m" != /tar-failed ] || exit 1
    if [ -n "$prev" ]; then done1 "$1" "$prev"; shift; fi
    prev=$m
  done
  if [ -n "$prev" ]; then done1 "$1" "$prev"; fi
}}
"""
_STAT = f'[ -e "$1" ] || exit {_MISSING}; exec stat -L -c "%s %Y %F" -- "$1"'


def default_control_dir() -> Path:
    """A short, private folder for ControlMaster sockets (a socket path must stay under ~104 bytes)."""
    return Path(os.environ.get("CORPUSBRIDGE_SSH_CONTROL_DIR") or f"/tmp/cb-ssh-{os.getuid()}")


def shell_glob_word(pattern: str) -> str:
    """A shell word that glob-expands `*`, `?` and simple `[...]` in `pattern` and takes every other character
    literally (quotes, spaces, `;`, `$` ...), so a pattern can never inject a command."""
    parts: list[str] = []
    literal = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        end = pattern.find("]", i + 2) if ch == "[" else -1
        if ch in "*?" or (end != -1 and _BRACKET.fullmatch(pattern[i + 1 : end])):
            stop = i + 1 if ch in "*?" else end + 1
            parts += [shlex.quote(literal)] if literal else []
            parts.append(pattern[i:stop])
            literal, i = "", stop
            continue
        literal += ch
        i += 1
    parts += [shlex.quote(literal)] if literal else []
    return "".join(parts)


class OpenSSHTransport:
    """`Transport` over `ssh`; see the module docstring. Thread-safe; cheap to create (the master is shared)."""

    name = "openssh"

    def __init__(self, settings: ClusterSettings, *, control_dir: Path | None = None) -> None:
        self.settings = settings
        self.control_dir = control_dir or default_control_dir()
        self._lock = threading.Lock()
        self._master_ready = False
        self._options = self._build_options()

    # -- the ssh command line ------------------------------------------------------------------------------
    def _build_options(self) -> list[str]:
        s = self.settings
        _private_dir(self.control_dir)
        if not s.strict_host_key_checking:
            log.warning(
                "%s: extra.accept_unknown_host_key_insecure is set: an unknown host key is accepted and remembered "
                "(trust on first use); pin the cluster's key in extra.host_key instead",
                s.destination,
            )
        opts = {
            "BatchMode": "yes",
            "ConnectTimeout": str(int(s.connect_timeout)),
            "ServerAliveInterval": "15",
            "ServerAliveCountMax": "4",
            "ControlMaster": "auto",
            "ControlPath": str(self.control_dir / "%C"),
            "ControlPersist": str(s.control_persist),
            "StrictHostKeyChecking": "yes" if s.strict_host_key_checking else "accept-new",
            "Ciphers": s.ciphers or _DEFAULT_CIPHERS,
            "LogLevel": "ERROR",
        }
        known = self._known_hosts_files()
        if known:
            opts["UserKnownHostsFile"] = " ".join(f'"{p}"' for p in known)
        if s.key_file:
            opts["IdentitiesOnly"] = "yes"
            opts["IdentityFile"] = f'"{s.key_file}"'
        argv = ["-T", "-x", "-a", "-p", str(s.port)]
        argv += ["-l", s.login] if s.login else []
        for key, value in opts.items():
            argv += ["-o", f"{key}={value}"]
        return argv

    def _known_hosts_files(self) -> list[Path]:
        """The pinned host key (written to a file of our own, never learned from the network) plus any file given."""
        s = self.settings
        files: list[Path] = []
        if s.host_key:
            pattern = s.host if s.port == 22 else f"[{s.host}]:{s.port}"
            line = f"{pattern} {s.host_key}\n"
            digest = hashlib.sha256(line.encode()).hexdigest()[:16]
            path = self.control_dir / f"known_hosts-{digest}"
            if not path.exists() or path.read_text() != line:
                tmp = path.with_suffix(f".{secrets.token_hex(4)}")
                tmp.write_text(line)
                tmp.replace(path)
            files.append(path)
        if s.known_hosts:
            files.append(s.known_hosts)
        if not files and not s.strict_host_key_checking:
            files.append(self.control_dir / "known_hosts-accept-new")
        return files

    def ssh_argv(self, remote_command: str | None = None) -> list[str]:
        """The full `ssh` argv for one remote command line (already quoted); also handy for rsync's `-e`."""
        argv = ["ssh", *self._options, self.settings.host]
        return argv if remote_command is None else [*argv, "--", remote_command]

    # -- connection ------------------------------------------------------------------------------------------
    def _ensure_master(self) -> None:
        """Open (or find) the shared master once, so that a login failure surfaces as a TransportError here."""
        if self._master_ready:
            return
        with self._lock:
            if self._master_ready:
                return
            proc = self._spawn(self.ssh_argv("true"), timeout=self.settings.connect_timeout + 20)
            if proc.returncode != 0:
                raise TransportError(f"ssh to {self.settings.destination} failed: {_why(proc.stderr)}")
            self._master_ready = True

    def master_alive(self) -> bool:
        proc = subprocess.run(
            ["ssh", *self._options, "-O", "check", self.settings.host], capture_output=True, timeout=10, check=False
        )
        return proc.returncode == 0

    def stop_master(self) -> None:
        """End the shared master now (other processes using it reconnect on their next command)."""
        subprocess.run(
            ["ssh", *self._options, "-O", "exit", self.settings.host], capture_output=True, timeout=10, check=False
        )
        self._master_ready = False

    def close(self) -> None:
        """Nothing to release per instance: the master is shared and ends after `control_persist` idle seconds."""

    def _spawn(
        self,
        argv: list[str],
        *,
        timeout: float | None,
        input: bytes | None = None,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        timeout = timeout if timeout is not None else self.settings.command_timeout
        try:
            return subprocess.run(
                argv,
                input=input,
                stdin=None if input is not None else (stdin or subprocess.DEVNULL),
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TransportTimeout(f"{self.settings.destination}: no answer within {timeout} s: {argv[-1]}") from None
        except OSError as exc:
            raise TransportError(f"cannot run ssh ({exc}): install openssh-client") from exc

    def _remote(
        self, script_argv: Sequence[str], *, timeout: float | None = None, **io: IO[bytes] | bytes | None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run argv remotely; a broken connection raises, a command's own failure is returned."""
        self._ensure_master()
        env = [f"{k}={v}" for k, v in self.settings.env.items()]
        line = _PRIVATE + shlex.join(["env", *env, *script_argv] if env else list(script_argv))
        proc = self._spawn(self.ssh_argv(line), timeout=timeout, **io)  # type: ignore[arg-type]
        if proc.returncode == _SSH_FAILED and (_SSH_ERROR.search(_text(proc.stderr)) or not self.master_alive()):
            self._master_ready = False
            raise TransportError(f"ssh to {self.settings.destination} failed: {_why(proc.stderr)}")
        return proc

    # -- Transport -------------------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], *, timeout: float | None = None, stdin: bytes | None = None) -> CommandResult:
        if not argv:
            raise ValueError("run() needs a program to run (argv is empty)")
        proc = self._remote(argv, timeout=timeout, input=stdin if stdin is not None else b"")
        return CommandResult(tuple(argv), proc.returncode, _text(proc.stdout), _text(proc.stderr))

    def put(self, local: Path, remote: str) -> None:
        """Stream a file into a hidden temporary name beside `remote`, then rename: never a half file under the
        real name, whatever a crash interrupts."""
        with open(local, "rb") as src:
            proc = self._remote(["sh", "-c", _PUT, "sh", remote, secrets.token_hex(6)], stdin=src)
        if proc.returncode != 0:
            raise OSError(f"{local} -> {self.settings.host}:{remote}: upload failed: {_text(proc.stderr).strip()}")

    def put_many(self, items: Sequence[tuple[Path, str]]) -> list[str]:
        """Upload many files as ONE tar stream (one round trip, no per-file ssh start); return the remote sha256 of
        each target, read back from disk after it was renamed into place."""
        if not items:
            return []
        base = os.path.commonpath([str(PurePosixPath(remote).parent) for _, remote in items])
        self._ensure_master()
        argv = ["sh", "-c", _PUT_MANY, "sh", base, secrets.token_hex(6), *(remote for _, remote in items)]
        read_end, write_end = os.pipe()
        widen_pipe(write_end)
        try:
            proc = subprocess.Popen(
                self.ssh_argv(_PRIVATE + shlex.join(argv)),
                stdin=read_end,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            os.close(write_end)
            raise TransportError(f"cannot run ssh ({exc}): install openssh-client") from exc
        finally:
            os.close(read_end)  # or a dead ssh would leave the writer blocked on a full pipe for ever
        writer = TarWriter(write_end, [local for local, _ in items])
        writer.start()
        out, err = proc.communicate()
        writer.join()
        if proc.returncode == _SSH_FAILED and (_SSH_ERROR.search(_text(err)) or not self.master_alive()):
            self._master_ready = False
            raise TransportError(f"ssh to {self.settings.destination} failed during upload: {_why(err)}")
        hashes = _text(out).split()
        if writer.error is not None or proc.returncode != 0 or len(hashes) != len(items):
            raise OSError(
                f"upload of {len(items)} files to {self.settings.host}:{base} failed "
                f"(rc {proc.returncode}): {writer.error or _text(err).strip()[-500:]}"
            )
        return hashes

    def get(self, remote: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name[:200]}.cb-part-{secrets.token_hex(4)}")
        try:
            with open(tmp, "wb") as dst:
                proc = self._remote(["sh", "-c", _GET, "sh", remote], stdout=dst)
            if proc.returncode == _MISSING:
                raise FileNotFoundError(f"{self.settings.host}:{remote}: no such file to download")
            if proc.returncode != 0:
                raise OSError(f"{self.settings.host}:{remote} -> {local}: download failed: {_text(proc.stderr)}")
            tmp.replace(local)
        finally:
            tmp.unlink(missing_ok=True)

    def get_many(self, items: Sequence[tuple[str, Path]]) -> None:
        """Download many remote files as ONE tar stream; member i is written (via a temporary name) to target i."""
        if not items:
            return
        self._ensure_master()
        argv = ["tar", "-c", "-b", str(_TAR_BLOCKING), "-h", "-P", "--no-recursion", "-f", "-", "--"]
        argv += [remote for remote, _ in items]
        with tempfile.TemporaryFile() as err:  # a pipe could fill up and stall tar while we read its output
            proc = subprocess.Popen(
                self.ssh_argv(shlex.join(argv)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
            assert proc.stdout is not None
            broken: StreamBroken | None = None
            written = 0
            try:
                written = untar_in_order(proc.stdout, [target for _, target in items])
            except StreamBroken as exc:
                broken = exc
            finally:
                proc.stdout.close()
                proc.wait()
            err.seek(0)
            message = _text(err.read()).strip()
        if broken is not None:
            self._master_ready = False
            raise TransportError(
                f"{self.settings.destination}: download of {len(items)} files failed: {broken} "
                f"(ssh rc {proc.returncode}: {message[-300:] or 'no message'})"
            ) from broken
        if proc.returncode == _SSH_FAILED and (_SSH_ERROR.search(message) or not self.master_alive()):
            self._master_ready = False
            raise TransportError(f"ssh to {self.settings.destination} failed during download: {_why(message.encode())}")
        if proc.returncode != 0 or written != len(items):
            raise OSError(
                f"download of {len(items)} files from {self.settings.host} failed after {written} "
                f"(rc {proc.returncode}): {message[-500:]}"
            )

    def stat(self, remote: str) -> RemoteStat | None:
        proc = self._checked(["sh", "-c", _STAT, "sh", remote], remote, "stat")
        if proc is None:
            return None
        size, mtime, kind = _text(proc.stdout).strip().split(" ", 2)
        return RemoteStat(size=int(size), mtime=float(mtime), is_dir=kind == "directory")

    def sha256(self, remote: str) -> str | None:
        proc = self._checked(["sh", "-c", _SHA256, "sh", remote], remote, "sha256sum")
        return None if proc is None else _text(proc.stdout).split()[0]

    def makedirs(self, remote: str) -> None:
        proc = self._remote(["mkdir", "-p", "--", remote])
        if proc.returncode != 0:
            raise OSError(f"{self.settings.host}:{remote}: mkdir failed: {_text(proc.stderr).strip()}")

    def glob(self, pattern: str) -> list[str]:
        script = (
            f'for f in {shell_glob_word(pattern)}; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\\0" "$f"; done; exit 0'
        )
        proc = self._remote(["sh", "-c", script])
        if proc.returncode != 0:
            raise OSError(f"{self.settings.host}: glob {pattern!r} failed: {_text(proc.stderr).strip()}")
        return sorted(p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p)

    def _checked(self, argv: list[str], remote: str, what: str) -> subprocess.CompletedProcess[bytes] | None:
        """Run a helper script; None when the path does not exist, OSError when the helper itself failed."""
        proc = self._remote(argv)
        if proc.returncode == _MISSING:
            return None
        if proc.returncode != 0:
            raise OSError(f"{self.settings.host}:{remote}: {what} failed: {_text(proc.stderr).strip()}")
        return proc


def widen_pipe(fd: int, size: int = 1 << 20) -> None:
    """Give a pipe 1 MiB of buffer instead of 64 KiB, so that writer and ssh wake each other 16x less often (the
    default Linux limit for unprivileged users, /proc/sys/fs/pipe-max-size); best effort: a refusal costs speed only."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


def _private_dir(path: Path) -> None:
    """Another user able to write here could plant a socket and see our commands: refuse that."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise TransportError(
            f"{path}: ssh control folder must be owned by uid {os.getuid()} with mode 0700 "
            "(set CORPUSBRIDGE_SSH_CONTROL_DIR to a private folder)"
        )


def _why(stderr: bytes | None) -> str:
    return _text(stderr).strip() or "connection lost (the shared ssh master ended, e.g. sshd restarted); retry"


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")
