"""Shared by the fault tests: a small real filesystem to fill up, and a sanitized corpus with incompressible text."""

from __future__ import annotations

import errno
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

TOPICS = ["lung cancer screening", "asthma in children", "malaria vaccine trials", "heart failure outcomes"]


@contextmanager
def small_disk(mount: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted at `mount` (unmounted after); skips the test when mounting is not permitted here."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` with one file until writing fails for want of space, then give back `leave` bytes."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    if leave:
        with open(filler, "r+b") as fh:
            fh.truncate(max(0, filler.stat().st_size - leave))
    return filler


def sanitized_corpus(conn: psycopg.Connection, docs: int, *, seed: int = 7, sentences: int = 4) -> None:
    """`docs` raw documents, sanitized; the abstracts carry random numbers so that their shards do not compress
    to nothing (the disk-full tests need real bytes)."""
    from sanitize_support import put_raw, raw_row

    from corpusbridge.sanitize.stage import run_sanitize

    rnd = random.Random(seed)
    rows = []
    for i in range(docs):
        body = " ".join(
            f"We studied {TOPICS[(i + k) % 4]} in cohort {rnd.randrange(10**9)} with {rnd.randrange(10**6)} "
            f"patients over {rnd.randrange(100)} years." for k in range(sentences)
        )  # fmt: skip
        rows.append(raw_row(f"doc-{i:04d}", title=f"On {TOPICS[i % 4]} ({i})", abstract=body, year=2000 + i % 7))
    put_raw(conn, *rows)
    conn.commit()
    run_sanitize(conn, workers=1)
