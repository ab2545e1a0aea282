"""Staging throughput to the loopback sandbox's scratch over SSH: corpusbridge `stage_in` (sha256-verified on
both sides) against `rsync -e ssh` and plain `scp` in the same run, plus the cost of a resume.

    .venv/bin/python bench/staging.py [--files 16] [--mib 64] [--rounds 4]

Brings the sandbox up (scripts/hpc-sandbox.sh up). Files are random (incompressible), Parquet-shard-sized.
Each method copies into a fresh remote folder; methods alternate within a round so that load on a shared machine
hits them alike; the best round of each is reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from corpusbridge.hpc.cluster import ClusterSettings
from corpusbridge.hpc.openssh import OpenSSHTransport
from corpusbridge.hpc.staging import stage_in
from corpusbridge.hpc.transport import TransportError

REPO = Path(__file__).resolve().parents[1]


def sandbox_settings() -> ClusterSettings:
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / "hpc-sandbox.sh"), "up"], capture_output=True, text=True, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("AIRFLOW_CONN_CORPUSBRIDGE_HPC="))
    return ClusterSettings.from_mapping(json.loads(line.split("=", 1)[1].strip("'")))


def make_inputs(folder: Path, files: int, mib: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = folder / f"shard-{i:05d}.parquet"
        if not path.exists() or path.stat().st_size != mib * 2**20:
            with open(path, "wb") as fh:
                for _ in range(mib):
                    fh.write(os.urandom(2**20))
        paths.append(path)
    return paths


def plain_ssh(s: ClusterSettings) -> list[str]:
    """ssh as a user would type it: its own connection, default cipher, the sandbox's key and pinned host key."""
    return ["ssh", "-p", str(s.port), *_key_options(s), "-o", "StrictHostKeyChecking=yes"]


def _key_options(s: ClusterSettings) -> list[str]:
    """The sandbox's client key and pinned host key, without prompts: what ssh and scp peers share."""
    return ["-i", str(s.key_file), "-o", f"UserKnownHostsFile={s.known_hosts}", "-o", "BatchMode=yes"]


def scp_argv(s: ClusterSettings, inputs: list[Path], dest: str, cipher: str | None) -> list[str]:
    argv = ["scp", "-q", "-P", str(s.port), *_key_options(s)]
    argv += ["-c", cipher] if cipher else []
    return [*argv, *map(str, inputs), f"{s.login}@{s.host}:{dest}/"]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_round(t: OpenSSHTransport, s: ClusterSettings, inputs: list[Path], base: str, n: int) -> dict[str, float]:
    """One copy per method into fresh folders; the order rotates with `n`, so that none always goes first (the
    first 1 GiB written after a deletion pays for the page cache writeback of the previous one)."""

    def fresh(name: str) -> str:
        dest = f"{base}/{name}-{n}"
        t.run(["rm", "-rf", dest])
        t.makedirs(dest)
        return dest

    def sh(argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    times: dict[str, float] = {}

    def ours() -> None:
        dest = fresh("cb")
        times["corpusbridge stage_in (verified)"] = timed(lambda: stage_in(t, inputs, dest))
        times["resume, all present"] = timed(lambda: stage_in(t, inputs, dest))
        half = fresh("half")
        stage_in(t, inputs[: len(inputs) // 2], half)  # the interrupted first attempt
        times["resume after interrupt at 50%"] = timed(lambda: stage_in(t, inputs, half))

    def stream_only() -> None:  # what stage_in's transport path costs without any hashing, same master & cipher
        dest = fresh("stream")
        pack = subprocess.Popen(
            ["tar", "-c", "-b", "2048", "-f", "-", "-C", str(inputs[0].parent), *(p.name for p in inputs)],
            stdout=subprocess.PIPE,
        )
        unpack = t.ssh_argv(shlex.join(["tar", "-x", "-B", "-b", "2048", "-f", "-", "-C", dest]))
        times["tar stream over the master, no hashing"] = timed(
            lambda: subprocess.run(unpack, stdin=pack.stdout, check=True)
        )
        pack.wait()

    def rsync() -> None:
        dest = fresh("rsync")
        argv = ["rsync", "-a", "-e", shlex.join(plain_ssh(s)), *map(str, inputs), f"{s.login}@{s.host}:{dest}/"]
        times["rsync -a -e ssh"] = timed(lambda: sh(argv))
        times["rsync re-run, all present"] = timed(lambda: sh(argv))

    def scp() -> None:
        dest = fresh("scp")
        times["scp (default cipher)"] = timed(lambda: sh(scp_argv(s, inputs, dest, None)))

    def scp_gcm() -> None:
        dest = fresh("scpgcm")
        times["scp -c aes128-gcm"] = timed(lambda: sh(scp_argv(s, inputs, dest, "aes128-gcm@openssh.com")))

    methods = [ours, rsync, scp, scp_gcm, stream_only]
    for method in methods[n % 5 :] + methods[: n % 5]:
        method()
    t.run(["rm", "-rf", base])
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "corpusbridge-bench-staging")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = sandbox_settings()
    inputs = make_inputs(args.data, args.files, args.mib)
    total_mib = args.files * args.mib
    transport = OpenSSHTransport(settings)
    base = f"{settings.scratch_root}/bench-staging"
    best: dict[str, float] = {}
    rounds: list[tuple[dict[str, float], float]] = []
    n = retries = 0
    while n < args.rounds:
        try:
            times = run_round(transport, settings, inputs, base, n)
        # The sandbox is shared: another session may restart sshd mid-round.
        except (TransportError, subprocess.CalledProcessError) as exc:
            retries += 1
            print(f"round {n} lost its connection ({str(exc)[-200:]}); repeating it in 20 s", file=sys.stderr)
            if retries > 8:
                raise
            time.sleep(20)
            continue
        for name, seconds in times.items():
            best[name] = min(seconds, best.get(name, seconds))
        rounds.append((times, os.getloadavg()[0]))
        n += 1
    report(best, total_mib, args)
    report_rounds(rounds)
    return 0


def report(best: dict[str, float], total_mib: int, args: argparse.Namespace) -> None:
    ours = best["corpusbridge stage_in (verified)"]
    peers = {k: v for k, v in best.items() if k.startswith(("rsync -a", "scp"))}
    fastest = min(peers.values())
    print(
        f"{args.files} files x {args.mib} MiB = {total_mib} MiB, best of {args.rounds} rounds, load "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(f"{'method':40} {'seconds':>8} {'MiB/s':>8} {'vs ours':>8}")
    for name, seconds in sorted(best.items()):
        print(f"{name:40} {seconds:8.2f} {total_mib / seconds:8.1f} {seconds / ours:8.2f}")
    print(f"stage_in throughput / best peer ({min(peers, key=peers.__getitem__)}): {fastest / ours:.2f}x (goal >= 0.8)")
    print(f"resume with everything present: {best['resume, all present'] / ours:.2f}x of a full staging")


def report_rounds(rounds: list[tuple[dict[str, float], float]]) -> None:
    """Each round's own ratios: the peers ran back to back with stage_in, so load hit them alike."""
    for n, (times, load) in enumerate(rounds):
        ours = times[OURS]
        peers = {k: v for k, v in times.items() if k.startswith(("rsync -a", "scp"))}
        best_peer = min(peers, key=peers.__getitem__)
        print(
            f"round {n} (load {load:.1f}): stage_in {ours:.2f} s; "
            f"/ rsync -a -e ssh {times['rsync -a -e ssh'] / ours:.2f}x; "
            f"/ best peer ({best_peer}) {peers[best_peer] / ours:.2f}x"
        )


OURS = "corpusbridge stage_in (verified)"


if __name__ == "__main__":
    sys.exit(main())
