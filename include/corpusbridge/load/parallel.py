"""Several shards loading at once, each on a connection of its own, each in its own transaction.

A batch's shards hold disjoint documents, so their transactions write disjoint rows (concepts, vectors, result and
ledger rows; pending graph deltas are inserts only) and never wait on each other: loading them side by side keeps
every exactly-once guarantee of one shard at a time and uses the server's cores (one backend per connection) and
the client's (Arrow writes the CSV and psycopg sends it with the GIL released).

    for shard, counts in loaded_shards(conn, shards, load_one, workers=4):
        ...  # in the order the shards commit, on the calling thread

With `workers=1` the shards load one after the other on `conn` itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo

Shard = TypeVar("Shard")
Counts = TypeVar("Counts")


def loaded_shards(
    conn: psycopg.Connection,
    shards: Sequence[Shard],
    load_one: Callable[[psycopg.Connection, Shard], Counts],
    *,
    workers: int,
) -> Iterator[tuple[Shard, Counts]]:
    """`load_one(connection, shard)` for every shard, `workers` at a time; yields each (shard, counts) as it commits.

    A shard that fails stops the rest as one at a time would: queued shards never start, shards already loading
    finish (and are yielded), then its error is raised here. A stop from outside (Ctrl-C, SIGTERM) cancels the
    shards in flight instead: their transactions roll back, and a rerun loads them.
    """
    if workers <= 1 or len(shards) <= 1:
        for shard in shards:
            yield shard, load_one(conn, shard)
        return
    with _Connections(conn) as connections, ThreadPoolExecutor(min(workers, len(shards)), "load") as pool:

        def on_own_connection(shard: Shard) -> Counts:
            return load_one(connections.mine(), shard)

        running: dict[Future[Counts], Shard] = {pool.submit(on_own_connection, s): s for s in shards}
        try:
            yield from _as_they_commit(running)
        except BaseException:
            for future in running:
                future.cancel()
            connections.stop(running)  # a no-op after a shard's own failure: nothing is in flight any more
            raise


def _as_they_commit(running: dict[Future[Counts], Shard]) -> Iterator[tuple[Shard, Counts]]:
    """Each shard as its load returns. After a failure the queued shards are cancelled and those in flight finish;
    then the first error is raised."""
    failure: BaseException | None = None
    while running:
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            shard = running.pop(future)
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                yield shard, future.result()
            elif failure is None:
                failure = error
                for queued in running:
                    queued.cancel()  # only shards not started yet can be: the others finish
    if failure is not None:
        raise failure


class _Connections:
    """One connection per worker thread, opened on first use with the caller's connection parameters."""

    def __init__(self, conn: psycopg.Connection) -> None:
        password = conn.info.password  # `dsn` never includes it
        self._conninfo = make_conninfo(conn.info.dsn, **({"password": password} if password else {}))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[psycopg.Connection] = []

    def mine(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = psycopg.connect(self._conninfo)
            with self._lock:
                self._opened.append(conn)
        return conn

    def stop(self, running: Mapping[Future[Any], Any]) -> None:
        """Cancel the statements in flight until every started shard has ended: their transactions roll back. Again
        and again, because a worker may send its next statement (or connect) just after a cancel went out."""
        while True:
            with self._lock:
                for conn in self._opened:
                    if not conn.closed:
                        conn.cancel_safe(timeout=10)
            _, not_done = wait(running, timeout=0.2)
            if not not_done:
                return

    def __enter__(self) -> _Connections:
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
