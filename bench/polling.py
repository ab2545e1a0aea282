"""SLURM polling cost vs job count: the shared poller against per-job polling, in the same run.

Submits N short jobs (sleep 1) to the loopback sandbox for N in --counts, waits for them with N
SlurmJobTriggers on one shared poller, and reports per tick: squeue calls, new SSH logins (sshd log), wall
time of the squeue. The peer is what a hand-written sensor per task does: one `ssh` login + `squeue -j ID`
per job per tick (measured for one tick at each N up to --naive-max; above that it would take minutes).

    .venv/bin/python bench/polling.py [--counts 1,10,50,200] [--naive-max 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins")]

from corpusbridge.hpc import jobs  # noqa: E402
from corpusbridge.hpc.cluster import ClusterSettings  # noqa: E402
from corpusbridge.hpc.openssh import OpenSSHTransport  # noqa: E402
from corpusbridge_airflow.triggers import slurm_poller  # noqa: E402
from corpusbridge_airflow.triggers.slurm import SlurmJobTrigger  # noqa: E402

CONN = "corpusbridge_hpc_bench"


def sandbox() -> tuple[dict, Path]:
    out = subprocess.run(
        ["bash", str(REPO / "scripts/hpc-sandbox.sh"), "up"], capture_output=True, text=True, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("AIRFLOW_CONN_CORPUSBRIDGE_HPC="))
    conn = json.loads(line.split("=", 1)[1].strip("'"))
    return conn, Path(conn["extra"]["slurm_conf"]).parents[1] / "log" / "sshd.log"


def logins(sshd_log: Path) -> int:
    return sshd_log.read_text(errors="replace").count("Accepted publickey")


def submit(transport: OpenSSHTransport, count: int) -> list[str]:
    name = f"cb-bench-{uuid.uuid4().hex[:8]}"
    one = f"sbatch --parsable --job-name={name} --output=/dev/null --time=00:02:00 --wrap 'sleep 1'"
    result = transport.run(["sh", "-c", f"for i in $(seq {count}); do {one}; done"], timeout=600)
    ids = result.stdout.split()
    if len(ids) != count:
        raise SystemExit(f"submitted {len(ids)} of {count}: {result.stderr}")
    return ids


async def shared_wait(transport: OpenSSHTransport, ids: list[str], interval: float) -> slurm_poller.PollerStats:
    poller = slurm_poller.poller_for(CONN, lambda: transport, interval)
    poller.stats = slurm_poller.PollerStats()
    triggers = [
        SlurmJobTrigger(slurm_conn_id=CONN, jobs={j: None}, poll_interval=interval, stream_logs=False) for j in ids
    ]
    events = await asyncio.gather(*(anext(t.run()) for t in triggers))
    states = {o["state"] for e in events for o in e.payload["outcomes"]}
    if states != {"COMPLETED"}:
        raise SystemExit(f"unexpected outcomes {states}")
    return poller.stats


def naive_tick(settings: ClusterSettings, ids: list[str]) -> float:
    """One tick the way a per-task SSH sensor polls: a fresh login and one squeue per job."""
    plain = OpenSSHTransport(settings)
    start = time.monotonic()
    for job_id in ids:
        argv = plain.ssh_argv("squeue -h -o %T -j " + job_id)
        # No multiplexing at all: neither become a master nor use the one the shared poller holds.
        argv[argv.index("ControlMaster=auto")] = "ControlMaster=no"
        argv[1:1] = ["-o", "ControlPath=none"]
        subprocess.run(argv, capture_output=True, check=False, timeout=60)
    return time.monotonic() - start


def measure(count: int, conn: dict, sshd_log: Path, naive_max: int) -> dict:
    settings = ClusterSettings.from_mapping(conn)
    transport = OpenSSHTransport(settings)
    ids = submit(transport, count)
    before = logins(sshd_log)
    start = time.monotonic()
    stats = asyncio.run(shared_wait(transport, ids, interval=1.0))
    row = {
        "jobs": count,
        "ticks": stats.ticks,
        "squeue_calls": stats.squeue_calls,
        "ssh_logins": logins(sshd_log) - before,
        "tick_ms_median": round(1000 * statistics.median(stats.tick_seconds), 1),
        "wall_s": round(time.monotonic() - start, 1),
    }
    if count <= naive_max:
        before = logins(sshd_log)
        row["naive_tick_s"] = round(naive_tick(settings, ids), 2)
        row["naive_logins_per_tick"] = logins(sshd_log) - before
        row["naive_vs_shared_tick"] = round(row["naive_tick_s"] / (row["tick_ms_median"] / 1000), 1)
    jobs.cancel(transport, ids)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1,10,50,200")
    parser.add_argument("--naive-max", type=int, default=50)
    args = parser.parse_args()
    # The triggers' per-job state lines would bury the table.
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.disable(logging.INFO)
    conn, sshd_log = sandbox()
    header = (
        "| jobs | ticks | squeue calls | new SSH logins | squeue ms/tick (median) | wall s | per-job tick s | "
        "per-job logins/tick | per-job / shared |"
    )
    print(header)
    print("|---" * 9 + "|")
    for count in (int(c) for c in args.counts.split(",")):
        r = measure(count, conn, sshd_log, args.naive_max)
        print(
            f"| {r['jobs']} | {r['ticks']} | {r['squeue_calls']} | {r['ssh_logins']} | {r['tick_ms_median']} | "
            f"{r['wall_s']} | {r.get('naive_tick_s', '-')} | {r.get('naive_logins_per_tick', '-')} | "
            f"{r.get('naive_vs_shared_tick', '-')}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
