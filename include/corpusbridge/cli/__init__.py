"""The `corpusbridge` command: every pipeline stage by hand, without Airflow.

Each subcommand lives in its own module exposing `add_parser(subparsers)`; the parser it adds sets
`func(args) -> int`. A module named here is imported only to build the parser, so keep heavy imports inside
the command functions.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

COMMAND_MODULES = (
    "corpusbridge.cli.ingest",
    "corpusbridge.cli.quarantine",
    "corpusbridge.cli.sanitize",
    "corpusbridge.cli.index",
    "corpusbridge.cli.search",
    "corpusbridge.cli.dictionary",
    "corpusbridge.cli.extract",
    "corpusbridge.cli.export",
    "corpusbridge.cli.load",
    "corpusbridge.cli.status",
    "corpusbridge.cli.similar",
    "corpusbridge.cli.concepts",
    "corpusbridge.cli.related",
    "corpusbridge.cli.graph",
    "corpusbridge.cli.run",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="corpusbridge", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


# Signals that end a command the way Ctrl-C does.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """A stop signal arrived. A KeyboardInterrupt, so psycopg cancels the query in flight and every `with` block
    unwinds (transactions roll back); `main` then returns 128 + the signal's number and the interpreter exits
    normally, running the embedded PostgreSQL's atexit hook: without it a SIGTERM left this process in the
    server's list of users, and the server never stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    previous = _on_stop_signals(_raise_stopped)
    try:
        return int(args.func(args) or 0)
    except Stopped as stop:
        logging.getLogger("corpusbridge").warning("stopped by %s", stop)
        return 128 + stop.signum
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly as Unix tools do, and let the exit not flush into the pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except SystemExit as exit_:
        if isinstance(exit_.code, str) and getattr(args, "json", False):
            return _failed(args, exit_.code.removeprefix(f"corpusbridge {args.command}: "))
        raise
    except Exception as exc:
        if args.verbose:
            raise
        return _failed(args, _one_line(exc), hint=True)
    finally:
        _on_stop_signals(previous)


def _one_line(exc: BaseException) -> str:
    """What went wrong, in one line: our errors and the OS's say it in their message; others add their type."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if text and (type(exc).__module__.startswith("corpusbridge") or isinstance(exc, OSError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _failed(args: argparse.Namespace, message: str, *, hint: bool = False) -> int:
    """A command that cannot go on: one line on stderr (`{"error": ...}` on stdout with --json); exit status 1."""
    if getattr(args, "json", False):
        print(json.dumps({"error": message}, ensure_ascii=False))
    else:
        print(f"corpusbridge {args.command}: {message}", file=sys.stderr)
        if hint:
            print(f"(`corpusbridge -v {args.command} ...` shows where it failed)", file=sys.stderr)
    return 1


def _on_stop_signals(handler: Any) -> Any:
    """Install `handler` (one, or one per signal as returned before); a no-op off the main thread (tests call
    `main` in-process, where only the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return handler
    handlers = handler if isinstance(handler, dict) else dict.fromkeys(STOP_SIGNALS, handler)
    # None: a handler set outside Python, which cannot be put back; the default is the closest.
    return {sig: signal.signal(sig, handlers[sig] or signal.SIG_DFL) for sig in STOP_SIGNALS}


if __name__ == "__main__":
    sys.exit(main())
