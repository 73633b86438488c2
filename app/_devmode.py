"""`python -m app --dev`: its own dev stack with short leases, where Vault is, a quiet Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

DEFAULT_DB_TTL = "30s"
DEFAULT_DB_MAX_TTL = "2m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that only `--dev` reads."""
    parser.add_argument(
        "--db-ttl", metavar="DURATION",
        help=f"with --dev: lifetime of a database login before renewal (default {DEFAULT_DB_TTL})",
    )
    parser.add_argument(
        "--db-max-ttl", metavar="DURATION",
        help=f"with --dev: renewals stop here and a new login replaces it "
        f"(default {DEFAULT_DB_MAX_TTL})",
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Fill the dev defaults; exit 2 with one line on a TTL that cannot work, before any start."""
    from ._durations import check_ttls  # not from vault_async: its import takes a second

    if not args.dev:
        if args.db_ttl is not None or args.db_max_ttl is not None:
            parser.error("--db-ttl and --db-max-ttl apply only with --dev")
        return
    args.db_ttl = args.db_ttl or DEFAULT_DB_TTL
    args.db_max_ttl = args.db_max_ttl or DEFAULT_DB_MAX_TTL
    try:
        check_ttls(args.db_ttl, args.db_max_ttl)
    except ValueError as exc:
        parser.error(str(exc))


def _interrupt_once(signum: int, frame: FrameType | None) -> None:
    """Stop the start-up; later signals are ignored so that the clean-up runs to its end."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def _redeliver_interrupts(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """A ``sys.unraisablehook`` that sends again a Ctrl-C Python had to swallow.

    A signal handler's ``KeyboardInterrupt`` raised inside a fork hook, a finalizer or a
    callback cannot propagate: Python prints it as "Exception ignored" and goes on starting
    up. This hook prints nothing and delivers SIGINT again, from outside, a moment later.
    """

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            previous(unraisable)
            return
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # _interrupt_once ran
            signal.signal(signal.SIGINT, _interrupt_once)
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()

    return hook


def _sigterm_as_sigint(signum: int, frame: FrameType | None) -> None:
    """SIGTERM does what Ctrl-C does at that moment (asyncio's handler while the loop runs)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The dev stack's own set-up calls are not the service's: keep them out of the INFO log."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _say(line: str) -> None:
    print(line, flush=True)


def run_dev(
    args: argparse.Namespace,
    *,
    migrate: Callable[[Mapping[str, str]], None],
    serve: Callable[[str, int], int],
) -> int:
    """Start a dev stack, say where it is, migrate, serve; exit 0 when interrupted at any stage."""
    from vault_async.devstack import DevStack, DevStackError

    _say(
        f"dev mode: database credentials last {args.db_ttl}, are renewed before they expire, "
        f"and are replaced by new ones after {args.db_max_ttl} (--db-ttl/--db-max-ttl)"
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt_once)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _redeliver_interrupts(previous_hook)
    try:
        with contextlib.ExitStack() as running:
            with _quiet("httpx"):
                stack = running.enter_context(
                    DevStack(db_ttl=args.db_ttl, db_max_ttl=args.db_max_ttl)
                )
            token_file = stack.write_root_token_file()
            _say(f"dev Vault at {stack.vault_addr}; root token in {token_file} (mode 0600)")
            _say(
                f"  reach it: export VAULT_ADDR={stack.vault_addr} "
                f'VAULT_TOKEN="$(cat {token_file})"  (both removed when this stops)'
            )
            _say(
                f"  watch http://{args.host}:{args.port}/healthz: database.renewals and "
                "database.generation grow as the leases turn over"
            )
            migrate(stack.migration_env())  # the migrations' own login, gone once they ran
            os.environ.update(stack.env())  # the service AppRole; root token only in the file
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _sigterm_as_sigint)
            code = serve(args.host, args.port)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)  # let the stack stop in peace
            return code
    except KeyboardInterrupt:
        print("dev mode: interrupted during start-up; dev stack stopped", file=sys.stderr)
        return 0
    except DevStackError as exc:
        print(f"start-up failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        sys.unraisablehook = previous_hook
